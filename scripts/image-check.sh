#!/usr/bin/env bash
# make image-check: build the image (scripts/image.sh) and run its own binary as an
# operator would in production, against a throwaway PostgreSQL:
#   1. the image holds only /scoville, /etc/passwd, /etc/group and the CA bundle, all
#      root's and read-only to others; its config runs /scoville serve as 65532:65532
#      and exposes 8080;
#   2. `keys generate`, then `migrate` with APP_ENV=production, DATABASE_URL a role
#      that owns nothing and DATABASE_MIGRATION_URL the owner (split_database_roles),
#      which the servers below are not given;
#   3. `serve` with RUN_WORKERS=false: /readyz and /healthz 200, an anonymous GraphQL
#      query answered, /metrics only on METRICS_ADDR; `work`: its metrics answer;
#      both processes run as uid and gid 65532 inside the container's root;
#   4. SIGTERM: each exits 0 and logs no ERROR.
# Then the container and the image are removed (also on failure or interrupt).
#
# Containers run with `buildah run --isolation chroot` (no daemon, no runtime such
# as runc needed), which shares the host's network: the server listens on free
# loopback ports and reaches PostgreSQL on 127.0.0.1. Production needs an https
# OIDC issuer: a throwaway CA signs a certificate for 127.0.0.1, `openssl s_server`
# serves a discovery document with it, and the container trusts that CA through
# SSL_CERT_DIR (a read-only mount) on top of the image's own bundle. Every other
# endpoint (Stripe, SMTP) is a loopback address: nothing leaves the machine.
#
#   DATABASE_URL    use this PostgreSQL (a superuser URL) instead of a throwaway one
#   CONTAINERS_STORAGE_CONF  a storage.conf for buildah (see scripts/image.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

scoville_require postgresql curl buildah ca-certificates openssl
scoville_tmpdir
tmp="$_SCOVILLE_TMP"
uid=65532

# ---- build. The image is removed on exit, whatever happens next.
image="localhost/scoville-check:$$"
scoville_defer buildah rmi -f "$image"
IMAGE="$image" bash scripts/image.sh

# ---- what the image is.
inspect() { buildah inspect --type image --format "$1" "$image"; }
config="$(inspect '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}} {{.OCIv1.Config.ExposedPorts}}')"
[[ $config == "$uid:$uid [/scoville] [serve] map[8080/tcp:{}]" ]] ||
	scoville_die "image config: want user $uid:$uid, entrypoint /scoville, cmd serve, port 8080; got: $config"
if revision="$(git rev-parse HEAD 2>/dev/null)"; then
	label="$(inspect '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}')"
	[[ $label == "$revision" || $label == "$revision-dirty" ]] || scoville_die "image revision label $label, want $revision"
fi
# Commands that change buildah's storage run in the foreground, their output to a
# file: a signal's cleanup then waits for them (bash runs a trap only after the
# foreground command ends, but at once while it reads a $(...)), so none is left
# running to create what the cleanup has just removed.
ctr="scoville-check-$$"
buildah rm "$ctr" >/dev/null 2>&1 || true # a leftover of a killed run with this pid
scoville_defer buildah rm "$ctr"
buildah from --pull=never --name "$ctr" "$image" >/dev/null
buildah mount "$ctr" >"$tmp/root"
root="$(<"$tmp/root")"
files="$(cd "$root" && find . -type f -printf '%p %u:%g %m\n' | sort | tr '\n' ';')"
want="./etc/group root:root 644;./etc/passwd root:root 644;./etc/ssl/certs/ca-certificates.crt root:root 644;./scoville root:root 755;"
[[ $files == "$want" ]] || scoville_die "image files: want $want got $files"
cmp -s "$root/etc/ssl/certs/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt ||
	scoville_die "the image's CA bundle differs from the build machine's"
grep -q "^scoville:x:$uid:$uid:" "$root/etc/passwd" || scoville_die "no user $uid in the image's /etc/passwd"
buildah umount "$ctr" >/dev/null
scoville_log "image: $config; files: $files"

# ---- PostgreSQL, with the server's role apart from the schema's owner.
start_postgres
split_database_roles

# ---- an https OIDC issuer on loopback (discovery only: no token is verified here).
issuer_port="$(scoville_free_port)" || scoville_die "no free port for the issuer"
issuer="https://127.0.0.1:$issuer_port"
mkdir -p "$tmp/tls/ca" "$tmp/tls/www/.well-known"
(
	cd "$tmp/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj '/CN=scoville image-check CA' -keyout ca.key -out ca/ca.pem \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-keyout leaf.key -out leaf.csr
	printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >leaf.ext
	openssl x509 -req -in leaf.csr -CA ca/ca.pem -CAkey ca.key -CAcreateserial -days 1 \
		-extfile leaf.ext -out leaf.pem
) >"$tmp/tls/openssl.log" 2>&1 || {
	scoville_show_log "$tmp/tls/openssl.log"
	scoville_die "could not make the issuer's certificate"
}
cat >"$tmp/tls/www/.well-known/openid-configuration" <<JSON
{"issuer":"$issuer","jwks_uri":"$issuer/jwks.json","authorization_endpoint":"$issuer/authorize",
 "token_endpoint":"$issuer/token","response_types_supported":["code"],"subject_types_supported":["public"],
 "id_token_signing_alg_values_supported":["RS256"]}
JSON
printf '{"keys":[]}\n' >"$tmp/tls/www/jwks.json"
scoville_log "issuer: openssl s_server on $issuer"
(cd "$tmp/tls/www" && exec openssl s_server -quiet -accept "127.0.0.1:$issuer_port" \
	-cert ../leaf.pem -key ../leaf.key -WWW) >"$tmp/tls/s_server.log" 2>&1 </dev/null &
issuer_pid=$!
scoville_track_pid "$issuer_pid"
scoville_wait_http "$issuer/.well-known/openid-configuration" "$issuer_pid" 30 --cacert "$tmp/tls/ca/ca.pem" || {
	scoville_show_log "$tmp/tls/s_server.log"
	scoville_die "the test issuer did not answer on $issuer"
}

# ---- the production configuration, as an operator gives it (test values).
# run_in_image ARGS...: /scoville ARGS in the container, as the image's user.
run_args=(--isolation chroot -v "$tmp/tls/ca:/etc/scoville-test-ca:ro")
run_in_image() { buildah run "${run_args[@]}" "$ctr" -- /scoville "$@"; }

run_in_image keys generate >"$tmp/keys" 2>"$tmp/keys.log" || {
	scoville_show_log "$tmp/keys.log"
	scoville_die "scoville keys generate failed in the image"
}
keys="$(<"$tmp/keys")"
http_port="$(scoville_free_port)" && metrics_port="$(scoville_free_port)" && work_metrics_port="$(scoville_free_port)" &&
	smtp_port="$(scoville_free_port)" || scoville_die "no free ports"
[[ $http_port != "$metrics_port" && $metrics_port != "$work_metrics_port" && $http_port != "$work_metrics_port" ]] ||
	scoville_die "free-port collision; run again"
env_vars=(
	APP_ENV=production
	SSL_CERT_DIR=/etc/scoville-test-ca
	"DATABASE_URL=$DATABASE_URL"
	"OIDC_ISSUER_URL=$issuer"
	OIDC_AUDIENCE=scoville-api
	STEP_UP_AMR=mfa
	STRIPE_SECRET_KEY=sk_test_imagecheck
	STRIPE_WEBHOOK_SECRET=whsec_imagecheck
	# Never called here; a loopback https address, so a stray call stays on the machine.
	"STRIPE_API_BASE=$issuer"
	"SMTP_URL=smtp://127.0.0.1:$smtp_port"
	"DATA_ENCRYPTION_KEYS=$keys"
	ALLOWED_REDIRECT_ORIGINS=https://shop.example.com
	CORS_ALLOWED_ORIGINS=https://shop.example.com
	TRUSTED_PROXIES=127.0.0.1
	RECONCILE_INTERVAL=0
)
for v in "${env_vars[@]}"; do
	run_args+=(--env "$v")
done

# ---- migrate, as the job before a rollout.
scoville_log "image: scoville migrate (production)"
# Only the migration job holds the owner's URL; the replicas below do not.
buildah run "${run_args[@]}" --env "DATABASE_MIGRATION_URL=${DATABASE_MIGRATION_URL:-}" "$ctr" -- /scoville migrate \
	>"$tmp/migrate.log" 2>&1 </dev/null || {
	scoville_show_log "$tmp/migrate.log"
	scoville_die "scoville migrate failed in the image"
}
psql="${_SCOVILLE_PGBIN:+$_SCOVILLE_PGBIN/}psql"
owned="$("$psql" -X -q -A -t -v ON_ERROR_STOP=1 "${DATABASE_MIGRATION_URL:-$DATABASE_URL}" -c \
	"SELECT count(*) FILTER (WHERE tableowner = current_user), count(*) FILTER (WHERE tableowner = 'scoville_app') FROM pg_tables WHERE schemaname = 'public'")" ||
	scoville_die "could not read the migrated tables"
if [[ -n ${DATABASE_MIGRATION_URL:-} ]]; then
	[[ $owned =~ ^[1-9][0-9]*\|0$ ]] || scoville_die "after migrate: want tables owned by the owner and none by scoville_app; got owner|app = $owned"
fi
scoville_log "image: migrated (tables owned by the owner | by the server's role: $owned)"

# image_process PID: the pid of the process named scoville below PID (buildah run's
# chroot child), printed; 1 when there is none.
image_process() {
	local root=$1 f line pid ppid rest p
	local -A parent=()
	local found=()
	for f in /proc/[0-9]*/stat; do
		{ IFS= read -r line <"$f"; } 2>/dev/null || continue
		pid=${line%% *}
		rest=${line##*) }
		read -r _ ppid _ <<<"$rest"
		parent[$pid]=$ppid
		[[ $line == *" (scoville) "* ]] && found+=("$pid")
	done
	for pid in "${found[@]}"; do
		p=$pid
		while [[ -n ${parent[$p]:-} && $p -gt 1 ]]; do
			p=${parent[$p]}
			if [[ $p == "$root" ]]; then
				printf '%s\n' "$pid"
				return 0
			fi
		done
	done
	return 1
}

# check_user PID NAME: the process runs as uid and gid 65532 (real, effective, saved
# and filesystem) in a root of its own.
check_user() {
	local pid=$1 name=$2 ids
	ids="$(awk '/^(Uid|Gid):/ { printf "%s %s %s %s ", $2, $3, $4, $5 }' "/proc/$pid/status")"
	[[ $ids == "$uid $uid $uid $uid $uid $uid $uid $uid " ]] || scoville_die "$name runs as uid/gid $ids, not $uid"
	[[ "$(readlink "/proc/$pid/root")" != / ]] || scoville_die "$name does not run in the image's root"
	scoville_log "image: $name runs as $uid:$uid in the image's root"
}

# stop_in_image BUILDAH_PID PID NAME LOG: SIGTERM to the process itself (buildah run
# does not pass signals on), then the run must end 0 with no ERROR logged.
stop_in_image() {
	local bpid=$1 pid=$2 name=$3 log=$4 rc=0
	kill -TERM "$pid"
	wait "$bpid" || rc=$?
	[[ $rc -eq 0 ]] || {
		scoville_show_log "$log"
		scoville_die "$name exited $rc after SIGTERM"
	}
	if grep -q '"level":"ERROR"' "$log"; then
		scoville_show_log "$log"
		scoville_die "$name logged an ERROR"
	fi
	scoville_log "image: $name stopped cleanly"
}

# ---- serve (API only) and work, each in the container.
url="http://127.0.0.1:$http_port"
scoville_log "image: scoville serve (production, RUN_WORKERS=false) on $url"
buildah run "${run_args[@]}" --env "HTTP_ADDR=127.0.0.1:$http_port" --env "METRICS_ADDR=127.0.0.1:$metrics_port" \
	--env RUN_WORKERS=false "$ctr" -- /scoville serve >"$tmp/serve.log" 2>&1 </dev/null &
serve_bpid=$!
scoville_await "$serve_bpid" "$url/readyz" 60 "serve in the image did not become ready ($url/readyz)" "$tmp/serve.log"
serve_pid="$(image_process "$serve_bpid")" || scoville_die "found no scoville process under buildah run"
check_user "$serve_pid" serve

status() { curl -s -o "$tmp/body" -w '%{http_code}' -m 10 "$@" || true; }
[[ "$(status "$url/healthz")" == 200 ]] || scoville_die "/healthz did not answer 200"
[[ "$(status "$url/metrics")" == 404 ]] || scoville_die "/metrics answered on HTTP_ADDR in production"
[[ "$(status "http://127.0.0.1:$metrics_port/metrics")" == 200 ]] || scoville_die "/metrics did not answer on METRICS_ADDR"
code="$(status -X POST -H 'Content-Type: application/json' --data '{"query":"{ plans { id name } }"}' "$url/graphql")"
[[ $code == 200 && "$(cat "$tmp/body")" == '{"data":{"plans":[]}}' ]] ||
	scoville_die "the anonymous plans query answered $code: $(head -c 300 "$tmp/body")"
grep -q '"msg":"listening".*"env":"production"' "$tmp/serve.log" || scoville_die "serve did not log its production start"
scoville_log "image: /readyz, /healthz and /graphql 200; /metrics on METRICS_ADDR only"

scoville_log "image: scoville work (production) with metrics on 127.0.0.1:$work_metrics_port"
buildah run "${run_args[@]}" --env "METRICS_ADDR=127.0.0.1:$work_metrics_port" "$ctr" -- /scoville work \
	>"$tmp/work.log" 2>&1 </dev/null &
work_bpid=$!
scoville_await "$work_bpid" "http://127.0.0.1:$work_metrics_port/metrics" 60 "work in the image did not start" "$tmp/work.log"
work_pid="$(image_process "$work_bpid")" || scoville_die "found no scoville work process under buildah run"
check_user "$work_pid" work

stop_in_image "$work_bpid" "$work_pid" work "$tmp/work.log"
stop_in_image "$serve_bpid" "$serve_pid" serve "$tmp/serve.log"
scoville_log "image check passed: $image (removed on exit with its container)"
