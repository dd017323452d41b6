#!/usr/bin/env bash
# make bench-webhooks: how fast the Stripe webhook route acknowledges deliveries,
# next to what the same PostgreSQL does with plain one-row inserts.
#
# Starts a throwaway PostgreSQL and stripe-mock (unless DATABASE_URL /
# STRIPE_API_BASE are set), builds and starts the development identity provider
# and the server on free loopback ports, then on the same database, BENCH_ROUNDS
# times in a row:
#   1. pgbench: a one-row INSERT into a scratch table, BENCH_CONCURRENCY clients;
#   2. cmd/webhookload: BENCH_EVENTS distinct invoice.paid events, each delivered
#      twice, by BENCH_CONCURRENCY senders; it waits until every event is applied
#      and checks there is exactly one payment and one shipment per invoice.
# Prints every round's figures and ratio, and whether the targets hold: the median
# round's acks/s at least 60% of its pgbench tps, and every p99 under 50 ms. With
# each round, the CPU that the server, PostgreSQL and the sender used while sending:
# on a shared machine the steadier comparison. Exits 1 only when a delivery was
# refused or the results are not exact; missing a target is reported, not an error.
#
#   SCOVILLE_PG_DURABLE  1 (default here): the throwaway cluster keeps PostgreSQL's
#                      durable defaults; 0: the test settings (fsync, synchronous_commit
#                      and full_page_writes off), which measure a database that keeps
#                      no commit
#   BENCH_ROUNDS       rounds of pgbench and load (default 3)
#   BENCH_CONCURRENCY  clients for both measurements (default 50)
#   BENCH_EVENTS       distinct events per round (default 10000)
#   PGBENCH_SECONDS    pgbench duration per round (default 10)
#   PGBENCH            pgbench program (default: newest /usr/lib/postgresql/*/bin/pgbench)
#   WEBHOOKLOAD_ARGS   more flags for cmd/webhookload, e.g. '-subscriptions 1000'
#   DB_MAX_OPEN_CONNS, DB_MAX_IDLE_CONNS, WEBHOOK_WORKERS, JOB_POLL_INTERVAL,
#   RATE_LIMIT_WEBHOOKS_PER_MINUTE
#                      server settings; the defaults below are the best measured here
#
# With DATABASE_URL set, the run's rows (a plan, customers, subscriptions, events,
# payments, shipments) stay in that database, under ids unique to the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

concurrency="${BENCH_CONCURRENCY:-50}"
events="${BENCH_EVENTS:-10000}"
pgbench_seconds="${PGBENCH_SECONDS:-10}"
rounds="${BENCH_ROUNDS:-3}"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || scoville_die "BENCH_ROUNDS must be a whole number of rounds, 1 or more (got '$rounds')"

# Server settings for the measurement, chosen on a 2-core machine when every
# acknowledgement was its own transaction (15/15: about 2,300 acks/s; the server's
# defaults, 20 open and 10 idle: about 1,500 acks/s). The pool is kept fully idle:
# with fewer idle connections than requests in flight, it closes and reopens
# connections all the time. Since the route writes by group commit
# (webhooks/batch.go) it holds at most two connections, whatever the number of
# senders; the rest of the pool serves the workers. The workers keep the server's
# default, and run in the server's process: they yield to the route while it is
# saturated (webhooks/worker.go), then apply the backlog. cmd/webhookload sends
# with its lean HTTP/1.1 client; WEBHOOKLOAD_ARGS='-client net/http' compares.
export DB_MAX_OPEN_CONNS="${DB_MAX_OPEN_CONNS:-15}"
export DB_MAX_IDLE_CONNS="${DB_MAX_IDLE_CONNS:-$DB_MAX_OPEN_CONNS}"
export WEBHOOK_WORKERS="${WEBHOOK_WORKERS:-10}"
export JOB_POLL_INTERVAL="${JOB_POLL_INTERVAL:-200ms}"
# The load comes from one address, so the per-address webhook limit (6,000 a
# minute by default) would refuse most of it: the measurement is of the route, not
# of the limiter, so the limit is as high as it goes.
export RATE_LIMIT_WEBHOOKS_PER_MINUTE="${RATE_LIMIT_WEBHOOKS_PER_MINUTE:-1000000}"

# The route's promise is that an event is kept once it is answered, and that holds
# only on a durable database: both figures are taken on one, as in production
# (scoville_bench_setup's default). The server does OIDC discovery at start-up,
# although no request of this benchmark carries a token: it needs the development
# identity provider.
scoville_bench_setup webhookload
pgbench=$SCOVILLE_PGBENCH
tmp="$_SCOVILLE_TMP"
idp_url=$SCOVILLE_IDP_URL

# ---- server
port="$(scoville_free_port)" || scoville_die "no free port for the server"
server_url="http://127.0.0.1:$port"
webhook_secret="whsec_bench_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
scoville_log "server: starting on 127.0.0.1:$port (log: $tmp/server.log)"
APP_ENV=development HTTP_ADDR="127.0.0.1:$port" LOG_LEVEL=warn MIGRATE_ON_START=true \
	OIDC_ISSUER_URL="$idp_url" OIDC_AUDIENCE=scoville-api \
	STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}" STRIPE_WEBHOOK_SECRET="$webhook_secret" \
	DATABASE_URL="$DATABASE_URL" STRIPE_API_BASE="$STRIPE_API_BASE" \
	"$tmp/scoville" >"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!
scoville_await "$server_pid" "$server_url/readyz" 60 "the server did not become ready ($server_url/readyz)" "$tmp/server.log"

# cpu_seconds PID: user+system CPU of PID and of its children it has waited for.
# For the postmaster that is PostgreSQL's whole cost, live backends excepted.
cpu_seconds() {
	local pid=$1 stat ticks
	ticks="$(getconf CLK_TCK)"
	stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || {
		echo 0
		return
	}
	# Fields after the command name (which may contain spaces): 14-17 are
	# utime stime cutime cstime; after stripping "pid (comm) " they are 12-15.
	awk -v t="$ticks" '{ printf "%.2f", ($12 + $13 + $14 + $15) / t }' <<<"${stat##*) }"
}
# pg_cpu_seconds: CPU of every process of the local cluster, or empty when the
# cluster is not ours to see (DATABASE_URL set).
pg_cpu_seconds() {
	local pm total child
	[[ -n ${_SCOVILLE_PGDATA:-} && -f $_SCOVILLE_PGDATA/postmaster.pid ]] || return 0
	pm="$(head -n 1 "$_SCOVILLE_PGDATA/postmaster.pid")"
	total="$(cpu_seconds "$pm")"
	for child in $(pgrep -P "$pm" 2>/dev/null); do
		total="$(awk -v a="$total" -v b="$(cpu_seconds "$child")" 'BEGIN { printf "%.2f", a + b }')"
	done
	printf '%s\n' "$total"
}

# pg_processes: how many processes the local cluster has (0 when not ours).
pg_processes() {
	[[ -n ${_SCOVILLE_PGDATA:-} && -f $_SCOVILLE_PGDATA/postmaster.pid ]] || {
		echo 0
		return
	}
	pgrep -c -P "$(head -n 1 "$_SCOVILLE_PGDATA/postmaster.pid")" || true
}

settings="$(scoville_sql "SELECT concat_ws(' ', 'PostgreSQL', current_setting('server_version'),
	'fsync=' || current_setting('fsync'), 'synchronous_commit=' || current_setting('synchronous_commit'),
	'full_page_writes=' || current_setting('full_page_writes'), 'shared_buffers=' || current_setting('shared_buffers'),
	'max_connections=' || current_setting('max_connections'))")"
scoville_log "$settings"

# ---- rounds: pgbench, then the webhook load, on the same database, BENCH_ROUNDS times.
# This machine's speed drifts by 20% and more within minutes; pairing each load with
# a pgbench taken just before it, and judging the median pair, keeps one unlucky
# moment from deciding the result. Every round is printed.
table_existed="$(scoville_sql "SELECT to_regclass('public.bench_insert') IS NOT NULL")"
scoville_sql "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, payload text, created_at timestamptz DEFAULT now())"
printf '%s\n' "INSERT INTO bench_insert (payload) VALUES ('webhook benchmark baseline');" >"$tmp/insert.sql"
extra=()
if [[ -n ${WEBHOOKLOAD_ARGS:-} ]]; then
	read -r -a extra <<<"$WEBHOOKLOAD_ARGS"
fi

# at_sent: passes webhookload's progress lines on, and notes the server's and
# PostgreSQL's CPU when it says sending is over: the CPU that acknowledging cost,
# whatever else the machine was doing meanwhile.
at_sent() {
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line" >&2
		if [[ $line == "webhookload: sent in "* ]]; then
			printf '%s %s\n' "$(cpu_seconds "$server_pid")" "$(pg_cpu_seconds)" >"$tmp/sent.cpu"
		fi
	done
}

# settle: lets the database come to rest before a measurement, so that neither is
# charged for the other's aftermath: the server's jobs done (notifications are still
# being sent after the last event is applied), VACUUM ANALYZE instead of autovacuum
# arriving in the middle of the next measurement, and a CHECKPOINT (skipped when the
# role may not).
settle() {
	local i
	for ((i = 0; i < 600; i++)); do
		[[ $(scoville_sql "SELECT count(*) FROM river_job WHERE state IN ('available', 'running')") -eq 0 ]] && break
		sleep 0.1
	done
	scoville_sql "VACUUM ANALYZE" >/dev/null
	scoville_sql "CHECKPOINT" >/dev/null 2>&1 || true
	for ((i = 0; i < 300; i++)); do
		[[ $(scoville_sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'") -eq 0 ]] && break
		sleep 0.1
	done
}

# round N: one pgbench and one load; appends a line to $tmp/rounds.txt:
#   tps acks/s ratio p50 p99 applied-after cpu-per-ack-us exit-status
round() {
	local n=$1 pg0 pg1 procs0 i tps latency load_rc=0 s0 p0 s_sent p_sent acks_per_s p50 p99 send_s acks sender processed cpu_us ratio
	settle
	scoville_log "round $n/$rounds: pgbench, $concurrency clients, ${pgbench_seconds}s, one-row INSERT ($pgbench)"
	pg0="$(pg_cpu_seconds)"
	procs0="$(pg_processes)"
	scoville_run "$pgbench" -n -c "$concurrency" -j 2 -T "$pgbench_seconds" -f "$tmp/insert.sql" "$DATABASE_URL" \
		>"$tmp/pgbench.log" 2>&1 || {
		scoville_show_log "$tmp/pgbench.log"
		scoville_die "pgbench failed"
	}
	# pgbench's backends exit after it does; their CPU counts once the postmaster has
	# reaped them.
	for ((i = 0; i < 50; i++)); do
		[[ $(pg_processes) -le $procs0 ]] && break
		sleep 0.1
	done
	pg1="$(pg_cpu_seconds)"
	tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$tmp/pgbench.log")"
	latency="$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$tmp/pgbench.log")"
	[[ -n $tps ]] || {
		scoville_show_log "$tmp/pgbench.log"
		scoville_die "could not read tps from pgbench's output"
	}
	if [[ -n $pg0 ]]; then
		scoville_log "round $n/$rounds: pgbench $tps tps (latency avg $latency ms; PostgreSQL CPU $(awk -v a="$pg0" -v b="$pg1" 'BEGIN { printf "%.1f", b - a }') s)"
	fi

	settle
	scoville_log "round $n/$rounds: webhookload, $events events x 2 deliveries, $concurrency senders"
	rm -f "$tmp/sent.cpu"
	s0="$(cpu_seconds "$server_pid")"
	p0="$(pg_cpu_seconds)"
	scoville_run "$tmp/webhookload" -url "$server_url/webhooks/stripe" -secret "$webhook_secret" \
		-database-url "$DATABASE_URL" -events "$events" -repeat 2 -concurrency "$concurrency" "${extra[@]}" \
		>"$tmp/load.txt" 2> >(at_sent) || load_rc=$?
	cat "$tmp/load.txt" >&2
	if [[ $load_rc -ne 0 ]]; then
		scoville_show_log "$tmp/server.log"
	fi
	acks_per_s="$(awk '/^acks\/s:/ { print $2; exit }' "$tmp/load.txt")"
	p50="$(awk '/^latency p50:/ { print $3; exit }' "$tmp/load.txt")"
	p99="$(awk '/^latency p99:/ { print $3; exit }' "$tmp/load.txt")"
	send_s="$(awk '/^acks:/ { print $4; exit }' "$tmp/load.txt")"
	acks="$(awk '/^acks:/ { print $2; exit }' "$tmp/load.txt")"
	sender="$(awk '/^sender CPU:/ { print $3; exit }' "$tmp/load.txt")"
	processed="$(awk '/^processed after:/ { print $3; exit }' "$tmp/load.txt")"
	cpu_us="?"
	# The sending's CPU: server and PostgreSQL until webhookload said it was done (the
	# workers applying events meanwhile included), and the sender's own.
	if [[ -n $p0 && -s $tmp/sent.cpu && -n $acks && $acks -gt 0 ]]; then
		read -r s_sent p_sent <"$tmp/sent.cpu"
		cpu_us="$(awk -v s0="$s0" -v s1="$s_sent" -v p0="$p0" -v p1="$p_sent" -v l="${sender:-0}" -v n="$acks" \
			'BEGIN { printf "%.0f", 1e6 * ((s1 - s0) + (p1 - p0) + l) / n }')"
		scoville_log "round $n/$rounds: while sending ($send_s s): server $(awk -v a="$s0" -v b="$s_sent" 'BEGIN { printf "%.1f", b - a }') s, PostgreSQL $(awk -v a="$p0" -v b="$p_sent" 'BEGIN { printf "%.1f", b - a }') s, sender ${sender:-?} s of CPU"
	fi
	ratio="$(awk -v a="${acks_per_s:-0}" -v b="$tps" 'BEGIN { printf "%.1f", 100 * a / b }')"
	printf '%s %s %s %s %s %s %s %s\n' "$tps" "${acks_per_s:-0}" "$ratio" "${p50:-?}" "${p99:-1e9}" "${processed:-?}" "$cpu_us" "$load_rc" >>"$tmp/rounds.txt"
}

: >"$tmp/rounds.txt"
for ((r = 1; r <= rounds; r++)); do
	round "$r"
done
if [[ $table_existed != t ]]; then
	scoville_sql "DROP TABLE bench_insert"
fi

verdict() { if [[ $1 == 1 ]]; then echo "met"; else echo "NOT MET"; fi; }
# The median pair's ratio (the mean of the middle two for an even count), the worst
# p99 of all rounds, and whether every round's results were exact.
median_ratio="$(scoville_median 3 %.1f "$tmp/rounds.txt")"
ratio_range="$(awk '{ print $3 }' "$tmp/rounds.txt" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }')"
worst_p99="$(awk '{ print $5 }' "$tmp/rounds.txt" | sort -g | tail -n 1)"
exact_rounds="$(awk '$8 == 0' "$tmp/rounds.txt" | wc -l | tr -d ' ')"
ratio_ok="$(awk -v r="$median_ratio" 'BEGIN { print (r >= 60) ? 1 : 0 }')"
p99_ok="$(awk -v p="$worst_p99" 'BEGIN { print (p < 50) ? 1 : 0 }')"
load_rc=0
[[ $exact_rounds -eq $rounds ]] || load_rc=1

cat <<EOF

============================================================================
 Webhook acknowledgement benchmark ($concurrency clients, one database, $rounds rounds)
 $settings
 server: DB_MAX_OPEN_CONNS=$DB_MAX_OPEN_CONNS DB_MAX_IDLE_CONNS=$DB_MAX_IDLE_CONNS WEBHOOK_WORKERS=$WEBHOOK_WORKERS JOB_POLL_INTERVAL=$JOB_POLL_INTERVAL
         RATE_LIMIT_WEBHOOKS_PER_MINUTE=$RATE_LIMIT_WEBHOOKS_PER_MINUTE
 each round: pgbench one-row INSERT for ${pgbench_seconds}s, then $events events x 2 deliveries
----------------------------------------------------------------------------
 round  pgbench tps   acks/s   acks/pgbench   p50 / p99 ms    applied   CPU/ack
EOF
awk '{ printf " %5d %12.1f %8.1f %12.1f %%   %5s / %-6s %8s s %6s us%s\n", NR, $1, $2, $3, $4, $5, $6, $7, ($8 == 0 ? "" : "  NOT EXACT") }' "$tmp/rounds.txt"
cat <<EOF
----------------------------------------------------------------------------
 (CPU/ack: server, PostgreSQL and sender CPU while sending, workers included)
 acks/s / pgbench tps     median $median_ratio % (rounds $ratio_range %)   target >= 60 %: $(verdict "$ratio_ok")
 p99 acknowledgement      worst $worst_p99 ms   target < 50 ms: $(verdict "$p99_ok")
 results exact            $exact_rounds of $rounds rounds
============================================================================
EOF
if [[ $settings == *fsync=off* ]]; then
	echo " Durability is off in this cluster (SCOVILLE_PG_DURABLE=0), for both figures alike: no commit is kept."
fi
exit "$load_rc"
