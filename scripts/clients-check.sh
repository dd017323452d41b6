#!/usr/bin/env bash
# make clients-check: the client kit against the real server, as CI runs it.
#
#   1. npm ci in clients/typescript; the printed schema, the TypeScript client and
#      the persisted-documents manifest are regenerated and must equal what is
#      committed (make clients regenerates them); tsc --noEmit checks the package.
#   2. A throwaway PostgreSQL and stripe-mock (scripts/lib.sh), the server binary,
#      the development identity provider; migrate and seed.
#   3. The Node example (clients/typescript/src/example/storefront.ts) against a
#      server in persisted-documents mode (PERSISTED_DOCUMENTS_MANIFEST): token,
#      plans, createSubscription, graphql-ws follow, signed Stripe events, ACTIVE.
#   4. The graphql-http server audit against a server in the default mode,
#      anonymous and with a customer token: any result but ok fails.
#
#   DATABASE_URL / STRIPE_API_BASE  used instead of throwaway ones when set
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

kit=clients/typescript
scoville_require postgresql curl
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	scoville_die "node and npm are needed: sudo apt-get install -y nodejs npm (Node 20 or later)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || scoville_die "Node 20 or later is needed (graphql-ws, the code generator); this is $(node --version)"

scoville_tmpdir
tmp=$_SCOVILLE_TMP

# ---- 1. the kit is what its sources generate, and it type-checks
scoville_log "npm ci ($kit)"
(cd "$kit" && npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm-ci.log" 2>&1) || {
	scoville_show_log "$tmp/npm-ci.log"
	scoville_die "npm ci failed"
}
scoville_log "regenerating clients/schema.graphql and the TypeScript client"
cp -R "$kit/src/gql" "$tmp/gql.committed"
go run ./cmd/printschema >"$tmp/schema.graphql"
cmp -s "$tmp/schema.graphql" clients/schema.graphql ||
	scoville_die "clients/schema.graphql is stale: run make clients and commit the result"
(cd "$kit" && npx graphql-codegen --config codegen.ts >"$tmp/codegen.log" 2>&1) || {
	scoville_show_log "$tmp/codegen.log"
	scoville_die "graphql-codegen failed"
}
diff -r "$tmp/gql.committed" "$kit/src/gql" >"$tmp/gql.diff" || {
	head -n 40 "$tmp/gql.diff" >&2
	cp -R "$tmp/gql.committed/." "$kit/src/gql/"
	scoville_die "the committed TypeScript client or manifest ($kit/src/gql) differs from what the schema and clients/operations generate: run make clients and commit the result"
}
scoville_log "tsc --noEmit"
(cd "$kit" && npx tsc --noEmit)
rm -rf "$kit/dist"
(cd "$kit" && npx tsc --outDir dist)

# ---- 2. database, stripe-mock, server binary, identity provider
start_postgres
start_stripe_mock
scoville_log "go build the server"
go build -o "$tmp/scoville" .
scoville_start_devidp "$tmp/scoville"
idp_url=$SCOVILLE_IDP_URL
export APP_ENV=development OIDC_ISSUER_URL="$idp_url" OIDC_AUDIENCE=scoville-api DATABASE_URL STRIPE_API_BASE
export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}" STRIPE_WEBHOOK_SECRET=whsec_clients_check
export LOG_LEVEL="${LOG_LEVEL:-warn}" MIGRATE_ON_START=false JOB_POLL_INTERVAL=50ms
scoville_log "migrate and seed"
"$tmp/scoville" migrate >"$tmp/migrate.log" 2>&1 || {
	scoville_show_log "$tmp/migrate.log"
	scoville_die "migrate failed"
}
"$tmp/scoville" seed >"$tmp/seed.log" 2>&1 || {
	scoville_show_log "$tmp/seed.log"
	scoville_die "seed failed"
}

# start_server NAME [VAR=VALUE...]: start the server on a free port with the
# extra environment, wait for /readyz, and set server_url.
start_server() {
	local name=$1 port
	shift
	port="$(scoville_free_port)" || scoville_die "no free port for the server"
	server_url="http://127.0.0.1:$port"
	scoville_log "server ($name): starting on 127.0.0.1:$port (log: $tmp/server-$name.log)"
	env HTTP_ADDR="127.0.0.1:$port" "$@" "$tmp/scoville" >"$tmp/server-$name.log" 2>&1 </dev/null &
	scoville_await $! "$server_url/readyz" 60 "the server ($name) did not become ready" "$tmp/server-$name.log"
}

# ---- 3. the Node example, persisted-documents mode
start_server persisted PERSISTED_DOCUMENTS_MANIFEST="$PWD/$kit/src/gql/persisted-documents.json"
scoville_log "the Node example: plans, createSubscription, graphql-ws follow until ACTIVE"
(cd "$kit" && SCOVILLE_URL="$server_url" DEVIDP_URL="$idp_url" node dist/example/storefront.js) || {
	scoville_show_log "$tmp/server-persisted.log"
	scoville_die "the Node example failed"
}

# ---- 4. the GraphQL over HTTP audit, default mode
start_server default RUN_WORKERS=false
scoville_log "graphql-http server audit, anonymous and as a customer"
(cd "$kit" && SCOVILLE_URL="$server_url" DEVIDP_URL="$idp_url" node dist/example/audit.js) || {
	scoville_show_log "$tmp/server-default.log"
	scoville_die "the GraphQL over HTTP audit found something"
}
scoville_log "clients-check: OK"
