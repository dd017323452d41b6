#!/usr/bin/env bash
# make run: the whole thing on this machine, for trying it out in the Playground.
#
# Starts a throwaway PostgreSQL and stripe-mock (unless DATABASE_URL /
# STRIPE_API_BASE are set), builds bin/scoville, starts the development identity
# provider (bin/scoville devidp), migrates, seeds, mints a customer, a support
# and an admin token, starts the server and prints how to use it. Ctrl-C stops
# everything.
#
#   --check or RUN_CHECK=1  do all that, run one GraphQL query with the customer
#                           token, print the answer and exit (non-interactive test)
#   HTTP_ADDR               server address (default 127.0.0.1:8080)
#   DEVIDP_ADDR             identity provider address (default 127.0.0.1:9096)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

check="${RUN_CHECK:-}"
[[ $check == 0 || $check == false ]] && check=""
for arg in "$@"; do
	case "$arg" in
	--check) check=1 ;;
	-h | --help)
		sed -n '2,15p' "$0"
		exit 0
		;;
	*) scoville_die "unknown argument: $arg (try --help)" ;;
	esac
done

export DEVIDP_ADDR="${DEVIDP_ADDR:-127.0.0.1:9096}"
export HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:8080}"
export OIDC_AUDIENCE="${OIDC_AUDIENCE:-scoville-api}"

# host:port -> a URL base reachable from this machine (":8080" -> 127.0.0.1:8080).
url_base() {
	local addr=$1 host port
	host="${addr%:*}"
	port="${addr##*:}"
	case "$host" in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
	printf 'http://%s:%s' "$host" "$port"
}
DEVIDP_URL="$(url_base "$DEVIDP_ADDR")"
SERVER_URL="$(url_base "$HTTP_ADDR")"
export APP_ENV=development
export OIDC_ISSUER_URL="$DEVIDP_URL"
# The Playground signs in at the devidp as its public client, which may return
# only to this server's /playground.
export PLAYGROUND_OIDC_CLIENT_ID="${PLAYGROUND_OIDC_CLIENT_ID:-scoville-playground}"
export DEVIDP_REDIRECT_URIS="${DEVIDP_REDIRECT_URIS:-$SERVER_URL/playground}"

# Refuse to start when the ports are taken: otherwise we would wait on, and
# talk to, whatever is there (often a forgotten earlier 'make run').
for addr in "$DEVIDP_ADDR" "$HTTP_ADDR"; do
	if scoville_port_in_use "${addr##*:}"; then
		scoville_die "port ${addr##*:} ($addr) is already in use (an earlier 'make run'?). Stop it, or pick another address: DEVIDP_ADDR=127.0.0.1:PORT / HTTP_ADDR=127.0.0.1:PORT"
	fi
done

scoville_require postgresql curl

own_db=""
[[ -z ${DATABASE_URL:-} ]] && own_db=1
start_postgres
split_database_roles
start_stripe_mock
scoville_tmpdir

scoville_log "go build -o bin/scoville ."
go build -o bin/scoville .

# ---- data keys: personal data is sealed at rest with DATA_ENCRYPTION_KEYS. The
# throwaway database gets a fresh key set; a database of your own (DATABASE_URL
# set) gets the server's built-in, PUBLIC development key set (the server says so
# when it starts), so that its data stays readable from one run to the next. Both
# are for development only; production refuses to start without a real value.
if [[ -z ${DATA_ENCRYPTION_KEYS:-} && -n $own_db ]]; then
	scoville_log "bin/scoville keys generate (a fresh development key set for this run)"
	DATA_ENCRYPTION_KEYS="$(bin/scoville keys generate)"
	export DATA_ENCRYPTION_KEYS
fi

# ---- development identity provider
scoville_log "devidp: starting on $DEVIDP_ADDR (log: $_SCOVILLE_TMP/devidp.log)"
bin/scoville devidp >"$_SCOVILLE_TMP/devidp.log" 2>&1 </dev/null &
scoville_await $! "$DEVIDP_URL/.well-known/openid-configuration" 30 \
	"the development identity provider did not answer on $DEVIDP_URL/.well-known/openid-configuration" "$_SCOVILLE_TMP/devidp.log"

# ---- database
scoville_log "bin/scoville migrate"
bin/scoville migrate
scoville_log "bin/scoville seed"
bin/scoville seed

# ---- tokens
# mint_token SUB EMAIL NAME [ROLES]: print an access token from the devidp.
mint_token() {
	local args=(--data-urlencode "sub=$1" --data-urlencode "email=$2" --data-urlencode "name=$3")
	if [[ -n ${4:-} ]]; then
		args+=(--data-urlencode "roles=$4")
	fi
	local body token
	body="$(curl -s -m 10 -X POST "${args[@]}" "$DEVIDP_URL/token")" || true
	token="$(printf '%s' "$body" | tr -d '\n' | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')"
	if [[ -z $token ]]; then
		echo "error: could not mint a token for $1 at $DEVIDP_URL/token; answer: $body" >&2
		return 1
	fi
	printf '%s\n' "$token"
}
customer_token="$(mint_token demo-customer customer@example.com 'Demo Customer')" || scoville_die "token minting failed"
support_token="$(mint_token demo-support support@example.com 'Demo Support' support)" || scoville_die "token minting failed"
admin_token="$(mint_token demo-admin admin@example.com 'Demo Admin' admin)" || scoville_die "token minting failed"

# ---- server
export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}"
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_dev_only}"
export ALLOWED_REDIRECT_ORIGINS="${ALLOWED_REDIRECT_ORIGINS:-http://localhost:3000}"
export DATABASE_URL STRIPE_API_BASE

scoville_log "server: starting on $HTTP_ADDR"
bin/scoville </dev/null &
server_pid=$!
scoville_await "$server_pid" "$SERVER_URL/readyz" 60 "the server did not become ready ($SERVER_URL/readyz); see its output above"

sample_query='{ plans { name interval price { amount currency } } me { email } }'

cat <<EOF

==============================================================================
 Scoville is running (development mode)

 Playground:  $SERVER_URL/playground
              ("Sign in", then pick the demo customer, support or admin)
 GraphQL:     $SERVER_URL/graphql
 Database:    $DATABASE_URL
              (migrations: ${DATABASE_MIGRATION_URL:-the same})
 stripe-mock: $STRIPE_API_BASE
 Identity:    $OIDC_ISSUER_URL   (development identity provider)

 Or paste one of these into the Playground's Headers tab:

 customer (customer@example.com, no roles):
   {"Authorization": "Bearer $customer_token"}

 support (support@example.com, roles=support):
   {"Authorization": "Bearer $support_token"}

 admin (admin@example.com, roles=admin):
   {"Authorization": "Bearer $admin_token"}

 Sample query:
   $sample_query

 Step-up operations need a sign-in (auth_time) younger than 5 minutes; mint a
 fresh token with (roles=support or roles=admin, or leave roles out):
   curl -s -X POST -d sub=demo-admin -d email=admin@example.com \\
     --data-urlencode 'name=Demo Admin' -d roles=admin $DEVIDP_URL/token

 Stripe webhooks: POST $SERVER_URL/webhooks/stripe, signing secret
 $STRIPE_WEBHOOK_SECRET. With a Stripe test account, forward its events with
   stripe listen --forward-to $SERVER_URL/webhooks/stripe
 and restart with STRIPE_WEBHOOK_SECRET set to the secret it prints.

 Ctrl-C stops everything (the database is thrown away).
==============================================================================

EOF

if [[ -n $check ]]; then
	scoville_log "check: running the sample query as the customer"
	payload="{\"query\": \"$sample_query\"}"
	answer="$(curl -s -m 30 -w '\n%{http_code}' -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $customer_token" -d "$payload" "$SERVER_URL/graphql")" ||
		scoville_die "curl to $SERVER_URL/graphql failed"
	code="${answer##*$'\n'}"
	body="${answer%$'\n'*}"
	printf '%s\n' "$body"
	if [[ $code != 200 ]]; then
		scoville_die "GraphQL answered HTTP $code"
	fi
	if [[ $body == *'"errors"'* ]]; then
		scoville_die "GraphQL answered with errors"
	fi
	playground_code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$SERVER_URL/playground")" || true
	if [[ $playground_code != 200 ]]; then
		scoville_die "the Playground answered HTTP $playground_code"
	fi
	scoville_log "check: OK"
	exit 0
fi

status=0
wait "$server_pid" || status=$?
scoville_log "server exited with status $status"
exit "$status"
