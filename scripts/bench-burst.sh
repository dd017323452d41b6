#!/usr/bin/env bash
# make bench-burst: the renewal burst after the last acknowledgement (issue 18,
# target 2) and the outgoing webhooks' load (issue 16, "Load").
#
# Starts a throwaway PostgreSQL (durable, as bench-webhooks) and stripe-mock (unless
# DATABASE_URL / STRIPE_API_BASE are set), the development identity provider, the
# server and cmd/webhooksink (a receiver that verifies Standard Webhooks signatures
# and counts distinct webhook-id), then runs three phases on one database:
#   A. BURST_EVENTS invoice.paid events (cmd/webhookload, each delivered twice), no
#      outgoing webhook endpoint;
#   B. an ADMIN registers an endpoint subscribed to "*" at the receiver (GraphQL
#      createWebhookEndpoint, a devidp token), then the same load again;
#   C. BURST_ONE_EVENTS events for ONE subscription, the endpoint still subscribed.
# For each phase it prints the drain: from the last acknowledgement until every
# event is applied (payments, shipments, notification rows and outbox messages are
# written in the event's transaction), until the job queue is empty (notifications
# sent, deliveries made), and, with the endpoint, until the receiver had the last
# new message; and the server's and PostgreSQL's CPU per event from the first send
# until the queue was empty. B's CPU less A's is what the endpoint adds per event.
# Exits 1 when a result is not exact (webhookload's checks, or not exactly one
# shipment.created per invoice at the receiver, or a signature that failed); a
# missed time target is reported, not an error. "applying transactions" counts the
# transactions that applied the phase's events (events / transactions: the batch size).
#
#   BURST_EVENTS        events in phases A and B (default 10000)
#   BURST_ONE_EVENTS    events for one subscription in phase C (default 1000; 0 skips C)
#   BURST_CONCURRENCY   senders (default 50)
#   BURST_PROFILE=1     build the server with -tags benchpprof and take a CPU profile
#                       of it during phase B's drain (BURST_PROFILE_SECONDS, default
#                       15), kept in BURST_PROFILE_DIR (default: bench-burst-profiles)
#   BURST_STATEMENTS=1  load pg_stat_statements and print, per phase, the statements
#                       per event (all of them: route, workers, sender's checks) and
#                       the BURST_STATEMENTS_TOP (default 25) that took the most
#                       time (statements-NAME.txt in the log directory); at the
#                       end, the indexes no query scanned on tables written
#   SCOVILLE_PG_DURABLE 1 (default), 0: the test settings
#   DB_MAX_OPEN_CONNS, DB_MAX_IDLE_CONNS, WEBHOOK_WORKERS, JOB_WORKERS,
#   JOB_POLL_INTERVAL, RATE_LIMIT_WEBHOOKS_PER_MINUTE: server settings (defaults
#                       as bench-webhooks)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

events="${BURST_EVENTS:-10000}"
one_events="${BURST_ONE_EVENTS:-1000}"
concurrency="${BURST_CONCURRENCY:-50}"
profile="${BURST_PROFILE:-0}"
profile_seconds="${BURST_PROFILE_SECONDS:-15}"
profile_dir="${BURST_PROFILE_DIR:-bench-burst-profiles}"
statements="${BURST_STATEMENTS:-0}"
statements_top="${BURST_STATEMENTS_TOP:-25}"

export DB_MAX_OPEN_CONNS="${DB_MAX_OPEN_CONNS:-15}"
export DB_MAX_IDLE_CONNS="${DB_MAX_IDLE_CONNS:-$DB_MAX_OPEN_CONNS}"
export WEBHOOK_WORKERS="${WEBHOOK_WORKERS:-10}"
export JOB_POLL_INTERVAL="${JOB_POLL_INTERVAL:-200ms}"
export RATE_LIMIT_WEBHOOKS_PER_MINUTE="${RATE_LIMIT_WEBHOOKS_PER_MINUTE:-1000000}"
export SCOVILLE_PG_DURABLE="${SCOVILLE_PG_DURABLE:-1}"

psql="$(printf '%s\n' /usr/lib/postgresql/*/bin/psql 2>/dev/null | grep -v '\*' | sort -V | tail -n 1 || true)"
[[ -n $psql && -x $psql ]] || psql="$(command -v psql)" || scoville_die "psql not found: sudo apt-get install -y postgresql-client"
command -v curl >/dev/null 2>&1 || scoville_die "curl is needed: sudo apt-get install -y curl"

start_postgres
if [[ $statements == 1 ]]; then
	printf "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n" >>"$_SCOVILLE_PGDATA/postgresql.conf"
	_scoville_pg "$_SCOVILLE_PGBIN/pg_ctl" -D "$_SCOVILLE_PGDATA" -w -t 60 restart >/dev/null ||
		scoville_die "PostgreSQL did not restart with pg_stat_statements"
fi
start_stripe_mock
scoville_tmpdir
tmp="$_SCOVILLE_TMP"

scoville_log "building the server, cmd/webhookload and cmd/webhooksink"
tags=()
[[ $profile != 1 ]] || tags=(-tags benchpprof)
go build "${tags[@]}" -o "$tmp/scoville" .
go build -o "$tmp/webhookload" ./cmd/webhookload
go build -o "$tmp/webhooksink" ./cmd/webhooksink

sql() { "$psql" "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# ---- identity provider and server
idp_port="$(scoville_free_port)" || scoville_die "no free port for the identity provider"
idp_url="http://127.0.0.1:$idp_port"
APP_ENV=development DEVIDP_ADDR="127.0.0.1:$idp_port" OIDC_AUDIENCE=scoville-api \
	"$tmp/scoville" devidp >"$tmp/devidp.log" 2>&1 </dev/null &
scoville_await $! "$idp_url/.well-known/openid-configuration" 30 \
	"the development identity provider did not answer on $idp_url" "$tmp/devidp.log"

port="$(scoville_free_port)" || scoville_die "no free port for the server"
server_url="http://127.0.0.1:$port"
pprof_env=()
if [[ $profile == 1 ]]; then
	pprof_port="$(scoville_free_port)" || scoville_die "no free port for pprof"
	pprof_env=(SCOVILLE_PPROF_ADDR="127.0.0.1:$pprof_port")
fi
webhook_secret="whsec_bench_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
scoville_log "server: starting on 127.0.0.1:$port (log: $tmp/server.log)"
env APP_ENV=development HTTP_ADDR="127.0.0.1:$port" LOG_LEVEL=warn MIGRATE_ON_START=true \
	OIDC_ISSUER_URL="$idp_url" OIDC_AUDIENCE=scoville-api \
	STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}" STRIPE_WEBHOOK_SECRET="$webhook_secret" \
	DATABASE_URL="$DATABASE_URL" STRIPE_API_BASE="$STRIPE_API_BASE" "${pprof_env[@]}" \
	"$tmp/scoville" >"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!
scoville_await "$server_pid" "$server_url/readyz" 60 "the server did not become ready ($server_url/readyz)" "$tmp/server.log"

# ---- CPU of the server and of the cluster (as bench-webhooks.sh counts it)
cpu_seconds() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
		echo 0
		return
	}
	awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13 + $14 + $15) / t }' <<<"${stat##*) }"
}
pg_cpu_seconds() {
	local pm total child
	[[ -n ${_SCOVILLE_PGDATA:-} && -f $_SCOVILLE_PGDATA/postmaster.pid ]] || {
		echo 0
		return
	}
	pm="$(head -n 1 "$_SCOVILLE_PGDATA/postmaster.pid")"
	total="$(cpu_seconds "$pm")"
	for child in $(pgrep -P "$pm" 2>/dev/null); do
		total="$(calc "$total + $(cpu_seconds "$child")")"
	done
	printf '%s\n' "$total"
}

# Jobs not done yet: what the queue still owes (a job snoozed or retried within
# the hour counts; periodic maintenance scheduled later does not).
pending_jobs_sql="SELECT 1 FROM river_job WHERE state IN ('available', 'running', 'retryable', 'scheduled', 'pending')
	AND scheduled_at < now() + interval '1 hour' LIMIT 1"
# await_queue_empty: wait (in one database session, 20 ms apart) until no job is
# pending; print when that was, by the database's clock (this machine's).
await_queue_empty() {
	sql "SET statement_timeout = '600s'; DO \$\$ BEGIN LOOP PERFORM 1 FROM ($pending_jobs_sql) p;
		EXIT WHEN NOT FOUND; PERFORM pg_sleep(0.02); END LOOP; END \$\$;
		SELECT extract(epoch FROM clock_timestamp())" | tail -n 1
}

settle() {
	await_queue_empty >/dev/null
	sql "VACUUM ANALYZE" >/dev/null
	sql "CHECKPOINT" >/dev/null 2>&1 || true
}

# ---- receiver
sink_port="$(scoville_free_port)" || scoville_die "no free port for the receiver"
sink_url="http://127.0.0.1:$sink_port"
sink_stats() { curl -s -m 5 "$sink_url/stats"; }
jnum() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }

# register_endpoint: an ADMIN token from the devidp, then createWebhookEndpoint for
# "*" at the receiver; starts the receiver with the secret the answer shows once.
register_endpoint() {
	local token body answer secret
	token="$(curl -s -m 10 -X POST --data-urlencode sub=bench-admin --data-urlencode email=bench-admin@example.com \
		--data-urlencode 'name=Bench Admin' --data-urlencode roles=admin "$idp_url/token" |
		tr -d '\n' | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')"
	[[ -n $token ]] || scoville_die "could not mint an ADMIN token at $idp_url/token"
	body="$(printf '{"query":"mutation($in: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $in) { endpoint { id } secret userErrors { code message } } }","variables":{"in":{"url":"%s/hook","eventTypes":["*"],"reason":"bench-burst receiver","idempotencyKey":"bench-burst-%s"}}}' \
		"$sink_url" "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')")"
	answer="$(curl -s -m 10 -H 'Content-Type: application/json' -H "Authorization: Bearer $token" -d "$body" "$server_url/graphql")"
	secret="$(printf '%s' "$answer" | sed -n 's/.*"secret":"\(whsec_[^"]*\)".*/\1/p')"
	[[ -n $secret ]] || scoville_die "createWebhookEndpoint gave no secret: $answer"
	scoville_log "endpoint registered at $sink_url/hook for \"*\"; receiver: starting (log: $tmp/sink.log)"
	WEBHOOKSINK_SECRET="$secret" "$tmp/webhooksink" -addr "127.0.0.1:$sink_port" >"$tmp/sink.log" 2>&1 </dev/null &
	scoville_await $! "$sink_url/stats" 30 "the receiver did not answer on $sink_url" "$tmp/sink.log"
}

# phase NAME EVENTS SUBS: one load; appends "name events send_s acks_per_s p99
# applied_s empty_s delivered_s server_cpu_us pg_cpu_us shipments_received exact" to
# $tmp/phases.txt (times after the last acknowledgement; "-" when not measured).
phase() {
	local name=$1 n=$2 subs=$3 rc=0 s0 p0 s1 p1 send_s processed acks_per_s p99 applied last_applied last_ack empty delivered="-"
	local i st0 st1 ship0=0 ship1="-" bad0=0 bad1=0 exact=yes prof_pid="" since batches
	settle
	since="$(sql "SELECT now()")"
	[[ $statements != 1 ]] || sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
	if [[ -n ${sink_started:-} ]]; then
		st0="$(sink_stats)"
		ship0="$(printf '%s' "$st0" | jnum 'shipment.created')"
		bad0="$(printf '%s' "$st0" | jnum badSignature)"
		ship0="${ship0:-0}" bad0="${bad0:-0}"
	fi
	scoville_log "phase $name: $n events x 2 deliveries over $subs subscription(s), $concurrency senders"
	s0="$(cpu_seconds "$server_pid")"
	p0="$(pg_cpu_seconds)"
	"$tmp/webhookload" -url "$server_url/webhooks/stripe" -secret "$webhook_secret" -database-url "$DATABASE_URL" \
		-events "$n" -repeat 2 -subscriptions "$subs" -concurrency "$concurrency" >"$tmp/load-$name.txt" \
		2> >(while IFS= read -r line; do
			printf '%s\n' "$line" >&2
			if [[ $line == "webhookload: sent in "* && $profile == 1 && $name == B ]]; then
				{ curl -s -m $((profile_seconds + 30)) -o "$tmp/cpu-$name.part" \
					"http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$profile_seconds" &&
					mv "$tmp/cpu-$name.part" "$tmp/cpu-$name.pprof"; } &
			fi
		done) || rc=$?
	empty="$(await_queue_empty)"
	s1="$(cpu_seconds "$server_pid")"
	p1="$(pg_cpu_seconds)"
	cat "$tmp/load-$name.txt" >&2
	[[ $rc -eq 0 ]] || exact=no
	send_s="$(awk '/^acks:/ { print $4; exit }' "$tmp/load-$name.txt")"
	acks_per_s="$(awk '/^acks\/s:/ { print $2; exit }' "$tmp/load-$name.txt")"
	p99="$(awk '/^latency p99:/ { print $3; exit }' "$tmp/load-$name.txt")"
	processed="$(awk '/^processed after:/ { print $3; exit }' "$tmp/load-$name.txt")"
	# A failed load may report neither; its phase is then marked not exact.
	send_s="${send_s:-0}" processed="${processed:-0}" acks_per_s="${acks_per_s:-0}" p99="${p99:-?}"
	# webhookload measures both from its first send: the last acknowledgement came
	# send_s after it, the last event was applied processed after it (processed_at).
	applied="$(calc "$processed - $send_s")"
	last_applied="$(sql "SELECT extract(epoch FROM max(processed_at)) FROM webhook_events")"
	last_ack="$(calc "$last_applied - $applied")"
	if [[ -n ${sink_started:-} ]]; then
		st1="$(sink_stats)"
		ship1="$(printf '%s' "$st1" | jnum 'shipment.created')"
		bad1="$(printf '%s' "$st1" | jnum badSignature)"
		ship1="$((${ship1:-0} - ship0))" bad1="$((${bad1:-0} - bad0))"
		delivered="$(calc "$(printf '%s' "$st1" | jnum lastNewUnix) - $last_ack")"
		scoville_log "phase $name: receiver: $st1"
		[[ $ship1 -eq $n && $bad1 -eq 0 ]] || exact=no
	fi
	# Applying transactions: each stamps the rows of the events it applied with
	# its own transaction id (xmin), so the distinct ones count them.
	batches="$(sql "SELECT count(DISTINCT xmin::text) FROM webhook_events WHERE processed_at >= '$since'")"
	if [[ $statements == 1 ]]; then
		sql "SELECT 'statements per event: ' || round(sum(calls)::numeric / $n, 1) FROM pg_stat_statements
			WHERE query NOT LIKE '%pg_stat_statements%'" >"$tmp/statements-$name.txt"
		"$psql" "$DATABASE_URL" -X -q -P pager=off -c "SELECT round(calls::numeric / $n, 2) AS per_event,
			round(total_exec_time::numeric / $n * 1000) AS us_per_event, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
			FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT $statements_top" \
			>>"$tmp/statements-$name.txt"
		scoville_log "phase $name: $(head -n 1 "$tmp/statements-$name.txt")"
		cat "$tmp/statements-$name.txt" >&2
	fi
	if [[ $profile == 1 && $name == B ]]; then
		for ((i = 0; i < (profile_seconds + 30) * 10; i++)); do
			[[ ! -s $tmp/cpu-$name.pprof ]] || break
			sleep 0.1
		done
	fi
	printf '%s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$name" "$n" "$send_s" "$acks_per_s" "$p99" "$applied" \
		"$(calc "$empty - $last_ack")" "$delivered" "$(calc "1e6 * ($s1 - $s0) / $n")" "$(calc "1e6 * ($p1 - $p0) / $n")" \
		"$ship1" "$exact" "${batches:-0}" >>"$tmp/phases.txt"
}

: >"$tmp/phases.txt"
phase A "$events" 100
register_endpoint
sink_started=1
phase B "$events" 100
if [[ $one_events -gt 0 ]]; then
	phase C "$one_events" 1
fi
if [[ -s $tmp/cpu-B.pprof ]]; then
	mkdir -p "$profile_dir"
	cp "$tmp/cpu-B.pprof" "$profile_dir/cpu-B.pprof"
	cp "$tmp/scoville" "$profile_dir/scoville"
	scoville_log "CPU profile of phase B's drain: go tool pprof -top $profile_dir/scoville $profile_dir/cpu-B.pprof"
fi

if [[ $statements == 1 ]]; then
	# Indexes every insert of the run updated but no query of it read.
	scoville_log "indexes never scanned since the cluster started (idx_scan = 0), on tables written:"
	"$psql" "$DATABASE_URL" -X -q -P pager=off -c "SELECT i.relname AS table, i.indexrelname AS index, t.n_tup_ins AS inserts
		FROM pg_stat_user_indexes i JOIN pg_stat_user_tables t USING (relid)
		WHERE i.idx_scan = 0 AND t.n_tup_ins > 0 ORDER BY t.n_tup_ins DESC, 2" >&2
fi

settings="$(sql "SELECT concat_ws(' ', 'PostgreSQL', current_setting('server_version'), 'fsync=' || current_setting('fsync'),
	'synchronous_commit=' || current_setting('synchronous_commit'))")"
cat <<EOF

============================================================================
 Renewal burst ($concurrency senders, each event delivered twice; times after the last ack)
 $settings
 server: DB_MAX_OPEN_CONNS=$DB_MAX_OPEN_CONNS WEBHOOK_WORKERS=$WEBHOOK_WORKERS JOB_WORKERS=${JOB_WORKERS:-20} JOB_POLL_INTERVAL=$JOB_POLL_INTERVAL
 A: no endpoint   B: one endpoint for "*" at cmd/webhooksink   C: one subscription, endpoint on
----------------------------------------------------------------------------
 phase  events  acks/s   p99 ms  applied  queue empty  last delivery  server/pg CPU per event  shipment.created  exact  applying transactions
EOF
awk '{ printf " %-5s %7d %8.0f %7s %7s s %10s s %12s s %10s / %-6s us %14s    %-5s  %s\n", $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }' "$tmp/phases.txt"
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "-" && v <= t) ? "met" : "NOT MET" }'; }
b_empty="$(awk '$1 == "B" { print $7 }' "$tmp/phases.txt")"
c_empty="$(awk '$1 == "C" { print $7 }' "$tmp/phases.txt")"
a_cpu="$(awk '$1 == "A" { print $9 + $10 }' "$tmp/phases.txt")"
b_cpu="$(awk '$1 == "B" { print $9 + $10 }' "$tmp/phases.txt")"
cat <<EOF
----------------------------------------------------------------------------
 $events events fully applied, queue empty (B)   ${b_empty:-?} s   target <= 10 s: $(verdict "${b_empty:--}" 10)
 $one_events events for one subscription (C)      ${c_empty:--} s   target <= 5 s: $(verdict "${c_empty:--}" 5)
 added by the endpoint (B - A), server + PostgreSQL CPU per event: $(calc "${b_cpu:-0} - ${a_cpu:-0}") us
============================================================================
EOF
if grep -q ' no$' "$tmp/phases.txt"; then
	exit 1
fi
