# shellcheck shell=bash
#
# Helpers shared by scripts/test.sh and scripts/run.sh. Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing registers a cleanup on EXIT, INT, TERM and HUP that stops everything
# started through these helpers (throwaway PostgreSQL, stripe-mock, any pid given
# to scoville_track_pid) and removes the temporary directory. Scripts that source
# this file must not install their own trap for those signals.
#
# Environment:
#   DATABASE_URL      set: start_postgres does nothing and that server is used
#   STRIPE_API_BASE   set: start_stripe_mock does nothing and that URL is used
#   SCOVILLE_KEEP_TMP=1  keep the temporary directory (logs) after exit
#   SCOVILLE_PG_DURABLE=1  the throwaway cluster keeps PostgreSQL's durable defaults
#                     (fsync, synchronous_commit, full_page_writes on), for benchmarks

if [[ -n ${_SCOVILLE_LIB_LOADED:-} ]]; then
	return 0
fi
_SCOVILLE_LIB_LOADED=1

SCOVILLE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_SCOVILLE_TMP=""      # temporary directory of this run (created on demand)
_SCOVILLE_PIDS=()     # background processes to stop on exit
_SCOVILLE_GROUPS=()   # process groups (scoville_run) to stop on exit
_SCOVILLE_PGDATA=""   # data directory of the throwaway cluster, if any
_SCOVILLE_PGBIN=""    # directory holding initdb, pg_ctl, postgres
_SCOVILLE_PGUSER=""   # user the cluster runs as ("" = ourselves)
_SCOVILLE_CLEANED=""
_SCOVILLE_DEFERRED=() # commands given to scoville_defer, run on exit

scoville_log() { printf '==> %s\n' "$*" >&2; }
scoville_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# scoville_defer CMD...: run CMD on exit (newest first), after the processes
# started through these helpers are stopped and before PostgreSQL is; its failure
# is ignored.
scoville_defer() { _SCOVILLE_DEFERRED+=("$(printf '%q ' "$@")"); }

# scoville_tmpdir: create (once) the temporary directory of this run and print
# nothing; the path is in $_SCOVILLE_TMP. Call it in the main shell, not in $(...).
scoville_tmpdir() {
	if [[ -z $_SCOVILLE_TMP ]]; then
		_SCOVILLE_TMP="$(mktemp -d "${TMPDIR:-/tmp}/scoville.XXXXXXXX")"
	fi
}

# scoville_track_pid PID: stop PID (TERM, then KILL) when the script exits.
scoville_track_pid() { _SCOVILLE_PIDS+=("$1"); }

# scoville_run CMD...: run CMD in a process group of its own and wait for it,
# returning its status. Unlike a foreground command, it is stopped at once, with
# all its children (go test's test binaries), when the script gets INT or TERM.
scoville_run() {
	local pid rc=0
	setsid "$@" &
	pid=$!
	_SCOVILLE_GROUPS+=("$pid")
	wait "$pid" || rc=$?
	unset '_SCOVILLE_GROUPS[-1]'
	return "$rc"
}

# scoville_port_in_use PORT: true when something accepts connections on
# 127.0.0.1:PORT (or, with ss, listens on PORT at all).
scoville_port_in_use() {
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		if [[ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]]; then
			return 0
		fi
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 0
	fi
	return 1
}

# scoville_free_port: print a TCP port that nothing listens on.
scoville_free_port() {
	local i port
	for ((i = 0; i < 100; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
		if ! scoville_port_in_use "$port"; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	echo "error: found no free TCP port" >&2
	return 1
}

# scoville_wait_http URL PID SECONDS [CURL ARGS...]: wait until URL answers 200,
# while process PID is alive. Returns 1 on timeout, 2 when PID died.
scoville_wait_http() {
	local url=$1 pid=$2 secs=$3 code i
	shift 3
	for ((i = 0; i < secs * 4; i++)); do
		code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" "$url" 2>/dev/null || true)"
		if [[ $code == 200 ]]; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			return 2
		fi
		sleep 0.25
	done
	return 1
}

# scoville_show_log FILE: print the last lines of FILE to stderr.
scoville_show_log() {
	local file=$1
	if [[ -f $file ]]; then
		printf -- '--- last lines of %s ---\n' "$file" >&2
		tail -n 40 "$file" >&2 || true
		printf -- '---\n' >&2
	fi
}

# scoville_await PID URL SECS MESSAGE [LOG]: track PID (stopped on exit) and wait
# until URL answers 200; if PID exits first or SECS pass, print the last lines of
# LOG (when given) and die with MESSAGE.
scoville_await() {
	local pid=$1 url=$2 secs=$3 message=$4 log=${5:-}
	scoville_track_pid "$pid"
	if ! scoville_wait_http "$url" "$pid" "$secs"; then
		if [[ -n $log ]]; then
			scoville_show_log "$log"
		fi
		scoville_die "$message"
	fi
}

# ------------------------------------------------------- system packages

# scoville_apt_install PKG...: install Debian packages as root, without letting
# the postgresql package start a cluster of its own (it would outlive the run).
scoville_apt_install() {
	local policy=/usr/sbin/policy-rc.d added_policy="" status=0
	scoville_log "installing with apt-get: $*"
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		added_policy=1
	fi
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
	} </dev/null || status=$?
	[[ -z $added_policy ]] || rm -f "$policy"
	return "$status"
}

# scoville_chromium_found: true when the Playground browser test will find a
# Chromium (CHROMIUM_PATH, else chromium or chromium-browser in PATH).
scoville_chromium_found() {
	if [[ -n ${CHROMIUM_PATH:-} ]]; then
		[[ -x $CHROMIUM_PATH ]]
		return
	fi
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

# scoville_require WHAT...: make sure the machine has what a command needs before
# anything is built: each WHAT is postgresql (skipped when DATABASE_URL is set),
# chromium, curl, buildah, ca-certificates (the bundle file) or openssl. As root
# with apt-get, what is missing is installed (and said);
# otherwise the script stops at once with the one command to run.
scoville_require() {
	local what missing=()
	for what in "$@"; do
		case "$what" in
		postgresql) [[ -n ${DATABASE_URL:-} ]] || _scoville_find_pgbin >/dev/null || missing+=(postgresql) ;;
		chromium) scoville_chromium_found || missing+=(chromium) ;;
		curl) command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates) ;;
		buildah) command -v buildah >/dev/null 2>&1 || missing+=(buildah) ;;
		ca-certificates) [[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates) ;;
		openssl) command -v openssl >/dev/null 2>&1 || missing+=(openssl) ;;
		*) scoville_die "scoville_require: unknown requirement $what" ;;
		esac
	done
	((${#missing[@]})) || return 0
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		scoville_log "this machine lacks ${missing[*]}; installing it now (root, apt-get)"
		scoville_apt_install "${missing[@]}" || scoville_die "apt-get install ${missing[*]} failed"
		return 0
	fi
	scoville_die "this machine lacks ${missing[*]}. Install it first:
  sudo apt-get install -y ${missing[*]}
(PostgreSQL: or set DATABASE_URL to a superuser URL; Chromium: or set CHROMIUM_PATH)"
}

# ---------------------------------------------------------------- PostgreSQL

# Print the directory holding initdb: the one found in PATH, else the newest
# /usr/lib/postgresql/*/bin.
_scoville_find_pgbin() {
	local p d
	if p="$(command -v initdb 2>/dev/null)" && [[ -n $p ]]; then
		p="$(readlink -f "$p")"
		d="$(dirname "$p")"
		if [[ -x $d/pg_ctl && -x $d/postgres ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	d="$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb 2>/dev/null | grep -v '\*' | sort -V | tail -n 1 || true)"
	if [[ -n $d && -x $d ]]; then
		dirname "$d"
		return 0
	fi
	return 1
}

# Run a PostgreSQL server program as the cluster's owner, from a directory that
# owner can read (postgres cannot stat /root, and initdb/pg_ctl call getcwd).
_scoville_pg() {
	if [[ -n $_SCOVILLE_PGUSER ]]; then
		(
			cd "$_SCOVILLE_TMP/pg" || exit 1
			if command -v runuser >/dev/null 2>&1; then
				runuser -u "$_SCOVILLE_PGUSER" -- "$@"
			else
				su -s /bin/sh "$_SCOVILLE_PGUSER" -c "$(printf '%q ' "$@")"
			fi
		)
	else
		(cd "$_SCOVILLE_TMP/pg" && "$@")
	fi
}

# start_postgres: unless DATABASE_URL is set, start a throwaway PostgreSQL
# cluster (trust auth, superuser postgres, 127.0.0.1 on a free port, durability
# off) and export DATABASE_URL. The cluster and its files go away on exit.
start_postgres() {
	if [[ -n ${DATABASE_URL:-} ]]; then
		scoville_log "PostgreSQL: using DATABASE_URL from the environment"
		return 0
	fi
	if ! _SCOVILLE_PGBIN="$(_scoville_find_pgbin)"; then
		scoville_die "PostgreSQL server programs (initdb) not found in PATH or /usr/lib/postgresql/*/bin.
  Install them:  sudo apt-get install -y postgresql
  or point DATABASE_URL at an existing server (a superuser URL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)."
	fi
	if [[ $(id -u) -eq 0 ]]; then
		# initdb and postgres refuse to run as root.
		if ! id -u postgres >/dev/null 2>&1; then
			scoville_die "running as root, but there is no 'postgres' user to own the throwaway cluster (initdb refuses root).
  'apt-get install -y postgresql' creates it; or run as a normal user; or set DATABASE_URL."
		fi
		_SCOVILLE_PGUSER=postgres
	fi

	scoville_tmpdir
	local dir="$_SCOVILLE_TMP/pg"
	mkdir -p "$dir"
	if [[ -n $_SCOVILLE_PGUSER ]]; then
		chmod 711 "$_SCOVILLE_TMP"
		chown "$_SCOVILLE_PGUSER:" "$dir"
		chmod 700 "$dir"
		if ! _scoville_pg test -w "$dir" 2>/dev/null; then
			scoville_die "user $_SCOVILLE_PGUSER cannot write to $dir (is ${TMPDIR:-/tmp} reachable for it? set TMPDIR=/tmp)"
		fi
	fi

	scoville_log "PostgreSQL: initdb ($_SCOVILLE_PGBIN, as ${_SCOVILLE_PGUSER:-$(id -un)})"
	if ! _scoville_pg "$_SCOVILLE_PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		scoville_show_log "$dir/initdb.log"
		scoville_die "initdb failed"
	fi
	_SCOVILLE_PGDATA="$dir/data"

	# Throwaway cluster: durability off (unless SCOVILLE_PG_DURABLE=1), lots of
	# connections for parallel tests.
	cat >>"$_SCOVILLE_PGDATA/postgresql.conf" <<EOF

# --- scoville throwaway cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
EOF
	if [[ ${SCOVILLE_PG_DURABLE:-} != 1 ]]; then
		printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$_SCOVILLE_PGDATA/postgresql.conf"
	fi

	local attempt port log="$dir/postgres.log" started=""
	for attempt in 1 2 3; do
		port="$(scoville_free_port)" || scoville_die "no free port for PostgreSQL"
		scoville_log "PostgreSQL: starting on 127.0.0.1:$port (log: $log)"
		if _scoville_pg "$_SCOVILLE_PGBIN/pg_ctl" -D "$_SCOVILLE_PGDATA" -l "$log" \
			-o "-p $port" -w -t 60 start >"$dir/pg_ctl.log" 2>&1; then
			started=1
			break
		fi
		# Someone took the port between our check and the bind: try another.
		if grep -q 'Address already in use' "$log" 2>/dev/null && [[ $attempt -lt 3 ]]; then
			_scoville_pg "$_SCOVILLE_PGBIN/pg_ctl" -D "$_SCOVILLE_PGDATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
			continue
		fi
		break
	done
	if [[ -z $started ]]; then
		scoville_show_log "$dir/pg_ctl.log"
		scoville_show_log "$log"
		scoville_die "PostgreSQL did not start"
	fi

	local isready="$_SCOVILLE_PGBIN/pg_isready" i ready=""
	[[ -x $isready ]] || isready="$(command -v pg_isready || true)"
	if [[ -n $isready ]]; then
		for ((i = 0; i < 60; i++)); do
			if "$isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; then
				ready=1
				break
			fi
			sleep 0.5
		done
	else
		ready=1 # pg_ctl -w already waited for "ready to accept connections"
	fi
	if [[ -z $ready ]]; then
		scoville_show_log "$log"
		scoville_die "PostgreSQL on 127.0.0.1:$port is not ready after 30 s"
	fi

	export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	scoville_log "PostgreSQL: ready, DATABASE_URL=$DATABASE_URL"
}

# split_database_roles: on the throwaway cluster, run the server as production does:
# DATABASE_URL becomes the role scoville_app, which owns nothing (migrations grant it
# what the server needs), and DATABASE_MIGRATION_URL the owner (postgres).
split_database_roles() {
	[[ -n $_SCOVILLE_PGDATA ]] || return 0
	local owner_url=$DATABASE_URL
	"$_SCOVILLE_PGBIN/psql" -q -v ON_ERROR_STOP=1 "$owner_url" \
		-c "CREATE ROLE scoville_app LOGIN PASSWORD 'scoville_app'" >/dev/null ||
		scoville_die "could not create the server's database role scoville_app"
	export DATABASE_MIGRATION_URL="$owner_url"
	export DATABASE_URL="${owner_url/postgres@/scoville_app:scoville_app@}"
	scoville_log "PostgreSQL: the server runs as scoville_app (DATABASE_URL), migrations as postgres (DATABASE_MIGRATION_URL)"
}

# --------------------------------------------------------------- stripe-mock

# start_stripe_mock: unless STRIPE_API_BASE is set, build and start the
# stripe-mock pinned in go.mod (go tool stripe-mock) on a free port and export
# STRIPE_API_BASE.
start_stripe_mock() {
	if [[ -n ${STRIPE_API_BASE:-} ]]; then
		scoville_log "stripe-mock: using STRIPE_API_BASE from the environment"
		return 0
	fi
	command -v curl >/dev/null 2>&1 || scoville_die "curl is needed: sudo apt-get install -y curl"
	scoville_tmpdir

	# 'go tool -n' builds the tool (cached) and prints its path; running the
	# binary ourselves leaves no 'go' parent process between us and the server.
	scoville_log "stripe-mock: building (go tool stripe-mock; the first build can take a minute)"
	local bin
	bin="$(cd "$SCOVILLE_ROOT" && go tool -n stripe-mock 2>"$_SCOVILLE_TMP/stripe-mock-build.log" | tail -n 1)" || true
	if [[ -z $bin || ! -x $bin ]]; then
		bin="$_SCOVILLE_TMP/stripe-mock"
		if ! (cd "$SCOVILLE_ROOT" && go build -o "$bin" github.com/stripe/stripe-mock) >>"$_SCOVILLE_TMP/stripe-mock-build.log" 2>&1; then
			scoville_show_log "$_SCOVILLE_TMP/stripe-mock-build.log"
			scoville_die "could not build stripe-mock (is it pinned in go.mod with 'tool github.com/stripe/stripe-mock'?)"
		fi
	fi

	local attempt port pid rc log="$_SCOVILLE_TMP/stripe-mock.log"
	for attempt in 1 2 3; do
		port="$(scoville_free_port)" || scoville_die "no free port for stripe-mock"
		scoville_log "stripe-mock: starting on 127.0.0.1:$port (log: $log)"
		"$bin" -http-addr "127.0.0.1:$port" -https-addr 127.0.0.1:0 >"$log" 2>&1 </dev/null &
		pid=$!
		scoville_track_pid "$pid"
		rc=0
		scoville_wait_http "http://127.0.0.1:$port/v1/customers" "$pid" 60 \
			-H 'Authorization: Bearer sk_test_123' || rc=$?
		if [[ $rc -eq 0 ]]; then
			export STRIPE_API_BASE="http://127.0.0.1:$port"
			scoville_log "stripe-mock: ready, STRIPE_API_BASE=$STRIPE_API_BASE"
			return 0
		fi
		if [[ $rc -eq 2 ]] && grep -q 'address already in use' "$log" 2>/dev/null && [[ $attempt -lt 3 ]]; then
			continue
		fi
		break
	done
	scoville_show_log "$log"
	scoville_die "stripe-mock did not answer on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- benchmarks

# scoville_bench_tools: set SCOVILLE_PGBENCH to PGBENCH, else the pgbench of the
# newest /usr/lib/postgresql/*/bin, like the cluster start_postgres starts (the
# /usr/bin wrapper may pick another version), else the one in PATH; and
# SCOVILLE_PSQL to the psql beside it, else the one in PATH. Dies when either is
# missing, with the package to install.
scoville_bench_tools() {
	local p=${PGBENCH:-}
	if [[ -z $p ]]; then
		p="$(printf '%s\n' /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | grep -v '\*' | sort -V | tail -n 1 || true)"
		[[ -n $p ]] || p="$(command -v pgbench || true)"
		[[ -n $p && -x $p ]] || scoville_die "pgbench not found: sudo apt-get install -y postgresql-contrib (or set PGBENCH)"
	fi
	SCOVILLE_PGBENCH=$p
	SCOVILLE_PSQL="$(dirname "$p")/psql"
	[[ -x $SCOVILLE_PSQL ]] || SCOVILLE_PSQL="$(command -v psql)" || scoville_die "psql not found: sudo apt-get install -y postgresql-client"
}

# scoville_sql QUERY: run QUERY on DATABASE_URL with SCOVILLE_PSQL and print its
# values unaligned, one row a line, without headers.
scoville_sql() { "$SCOVILLE_PSQL" "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# scoville_start_devidp BIN: start the development identity provider (BIN devidp,
# audience scoville-api) on a free loopback port, stopped on exit; wait until it
# answers, and set SCOVILLE_IDP_URL. Dies (with its log) when it does not answer.
scoville_start_devidp() {
	local bin=$1 port log
	scoville_tmpdir
	log="$_SCOVILLE_TMP/devidp.log"
	port="$(scoville_free_port)" || scoville_die "no free port for the identity provider"
	SCOVILLE_IDP_URL="http://127.0.0.1:$port"
	scoville_log "devidp: starting on 127.0.0.1:$port (log: $log)"
	APP_ENV=development DEVIDP_ADDR="127.0.0.1:$port" OIDC_AUDIENCE=scoville-api \
		"$bin" devidp >"$log" 2>&1 </dev/null &
	scoville_await $! "$SCOVILLE_IDP_URL/.well-known/openid-configuration" 30 \
		"the development identity provider did not answer on $SCOVILLE_IDP_URL" "$log"
}

# scoville_bench_setup CMD: what every benchmark starts with. Finds pgbench and
# psql (scoville_bench_tools); starts PostgreSQL with its durable defaults unless
# SCOVILLE_PG_DURABLE says otherwise (a benchmark measures a database that keeps
# its commits, as in production) and stripe-mock; builds the server and ./cmd/CMD
# into $_SCOVILLE_TMP (as scoville and CMD); starts the development identity
# provider (scoville_start_devidp).
scoville_bench_setup() {
	local cmd=$1
	scoville_bench_tools
	export SCOVILLE_PG_DURABLE="${SCOVILLE_PG_DURABLE:-1}"
	start_postgres
	start_stripe_mock
	scoville_tmpdir
	scoville_log "building the server and cmd/$cmd"
	go build -o "$_SCOVILLE_TMP/scoville" .
	go build -o "$_SCOVILLE_TMP/$cmd" "./cmd/$cmd"
	scoville_start_devidp "$_SCOVILLE_TMP/scoville"
}

# scoville_median N FORMAT FILE: the median of the numbers in column N of FILE
# (the mean of the middle two for an even count), printed with printf FORMAT.
scoville_median() {
	awk -v c="$1" '{ print $c }' "$3" | sort -g |
		awk -v f="$2" '{ v[NR] = $1 } END { if (NR % 2) printf f, v[(NR + 1) / 2]; else printf f, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ------------------------------------------------------------------- cleanup

_scoville_stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

_scoville_stop_group() {
	local pgid=$1 i
	if kill -TERM -- "-$pgid" 2>/dev/null; then
		for ((i = 0; i < 50; i++)); do
			kill -0 -- "-$pgid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	wait "$pgid" 2>/dev/null || true
}

# scoville_cleanup: stop what we started (newest first), remove the temp dir.
# Safe to call more than once.
scoville_cleanup() {
	[[ -z $_SCOVILLE_CLEANED ]] || return 0
	_SCOVILLE_CLEANED=1
	set +e
	local i
	for ((i = ${#_SCOVILLE_GROUPS[@]} - 1; i >= 0; i--)); do
		_scoville_stop_group "${_SCOVILLE_GROUPS[i]}"
	done
	for ((i = ${#_SCOVILLE_PIDS[@]} - 1; i >= 0; i--)); do
		_scoville_stop_pid "${_SCOVILLE_PIDS[i]}"
	done
	for ((i = ${#_SCOVILLE_DEFERRED[@]} - 1; i >= 0; i--)); do
		eval "${_SCOVILLE_DEFERRED[i]}" >/dev/null 2>&1
	done
	if [[ -n $_SCOVILLE_PGDATA && -f $_SCOVILLE_PGDATA/postmaster.pid ]]; then
		scoville_log "PostgreSQL: stopping"
		if ! _scoville_pg "$_SCOVILLE_PGBIN/pg_ctl" -D "$_SCOVILLE_PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
			_scoville_pg "$_SCOVILLE_PGBIN/pg_ctl" -D "$_SCOVILLE_PGDATA" -m immediate -w -t 10 stop >/dev/null 2>&1
			local pmpid
			pmpid="$(head -n 1 "$_SCOVILLE_PGDATA/postmaster.pid" 2>/dev/null)"
			if [[ $pmpid =~ ^[0-9]+$ ]] && kill -0 "$pmpid" 2>/dev/null; then
				kill -KILL "$pmpid" 2>/dev/null
			fi
		fi
	fi
	if [[ -n $_SCOVILLE_TMP && -d $_SCOVILLE_TMP ]]; then
		if [[ -n ${SCOVILLE_KEEP_TMP:-} ]]; then
			scoville_log "kept $_SCOVILLE_TMP (SCOVILLE_KEEP_TMP is set)"
		else
			rm -rf "$_SCOVILLE_TMP"
		fi
	fi
	return 0
}

_scoville_on_exit() {
	local rc=$?
	scoville_cleanup
	exit "$rc"
}

_scoville_on_signal() {
	local sig=$1 code=$2
	trap - "$sig"
	printf '\n' >&2
	scoville_log "got SIG$sig, stopping"
	scoville_cleanup
	exit "$code"
}

trap _scoville_on_exit EXIT
trap '_scoville_on_signal INT 130' INT
trap '_scoville_on_signal TERM 143' TERM
trap '_scoville_on_signal HUP 129' HUP
