#!/usr/bin/env bash
# make bench-read: how fast the authenticated read path answers, next to what the
# same PostgreSQL does with pgbench's read-only transactions.
#
# Starts a throwaway PostgreSQL and stripe-mock (unless DATABASE_URL /
# STRIPE_API_BASE are set), the development identity provider (devidp) and the
# server on free loopback ports; seeds BENCH_CUSTOMERS customers with 1 to 3
# subscriptions each (cmd/readload) and mints a token for BENCH_TOKENS of them; then,
# BENCH_ROUNDS times in a row on the same database:
#   1. pgbench -S (read-only, select by primary key), BENCH_CONNECTIONS clients;
#   2. wrk -t2 -c BENCH_CONNECTIONS: the query below, each request with the next
#      token (so the server sees BENCH_TOKENS different callers):
#        { me { id email subscriptions { id status plan { name interval price { amount currency } } } } }
# Prints every round's figures (PostgreSQL's CPU per pgbench transaction and per
# request beside the server's), and whether the targets of the median round hold:
# at least 40% of pgbench's tps, p99 at most 15 ms, server memory (RSS, the highest
# sampled while wrk runs) at most 50 MiB. Then stops the server and counts the
# ERROR lines its log holds (a clean shutdown logs none). Exits 1 only when a
# request failed (non-2xx, socket errors, GraphQL errors in the check before the
# rounds); missing a target is reported, not an error.
#
# wrk comes from Debian's package: when it is missing, the script installs it (as
# root, with apt-get) or stops with the command to run.
#
#   BENCH_ROUNDS       rounds of pgbench and wrk (default 3)
#   BENCH_SECONDS      duration of each pgbench and each wrk (default 15)
#   BENCH_CONNECTIONS  clients for both (default 32)
#   BENCH_CUSTOMERS    customers seeded (default 10000)
#   BENCH_TOKENS       customers with a token, spread over all (default 1000)
#   PGBENCH_SCALE      pgbench -i scale (default 1)
#   PGBENCH            pgbench program (default: newest /usr/lib/postgresql/*/bin/pgbench)
#   SCOVILLE_PG_DURABLE  1 (default here): PostgreSQL's durable defaults; 0: the
#                      test settings
#   DB_MAX_OPEN_CONNS, DB_MAX_IDLE_CONNS  the server's pool (defaults: the server's)
#   BENCH_PROFILE=1    build the server with -tags benchpprof and, during the last
#                      round's wrk, take a CPU profile and an allocation profile of
#                      it (BENCH_PROFILE_SECONDS, default: BENCH_SECONDS less 3), then
#                      the heap in use; kept in BENCH_PROFILE_DIR (default:
#                      bench-read-profiles). Profiling costs CPU: that round's
#                      CPU/req is not comparable with the others.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-15}"
connections="${BENCH_CONNECTIONS:-32}"
customers="${BENCH_CUSTOMERS:-10000}"
tokens="${BENCH_TOKENS:-1000}"
scale="${PGBENCH_SCALE:-1}"
profile="${BENCH_PROFILE:-0}"
profile_dir="${BENCH_PROFILE_DIR:-bench-read-profiles}"
profile_seconds="${BENCH_PROFILE_SECONDS:-$((seconds > 4 ? seconds - 3 : 1))}"
for v in rounds seconds connections customers tokens scale profile_seconds; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || scoville_die "$v must be a whole number, 1 or more (got '${!v}')"
done

if ! command -v wrk >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		scoville_log "this machine lacks wrk; installing Debian's package now (root, apt-get)"
		scoville_apt_install wrk || scoville_die "apt-get install wrk failed"
	else
		scoville_die "this machine lacks wrk. Install it first:
  sudo apt-get install -y wrk"
	fi
fi
scoville_require postgresql curl

# Durable PostgreSQL, stripe-mock, the server and cmd/readload built, and the
# development identity provider, whose tokens the server verifies.
scoville_bench_setup readload
pgbench=$SCOVILLE_PGBENCH
tmp="$_SCOVILLE_TMP"
idp_url=$SCOVILLE_IDP_URL
server_bin="$tmp/scoville"
pprof_env=()
if [[ $profile == 1 ]]; then
	scoville_log "building the server with -tags benchpprof"
	go build -tags benchpprof -o "$tmp/scoville-pprof" .
	server_bin="$tmp/scoville-pprof"
	pprof_port="$(scoville_free_port)" || scoville_die "no free port for pprof"
	pprof_env=(SCOVILLE_PPROF_ADDR="127.0.0.1:$pprof_port")
fi

# ---- server. All the load comes from one address and from BENCH_TOKENS callers:
# the rate and in-flight limits are as high as they go, so that the measurement is
# of the read path, not of the limiter.
port="$(scoville_free_port)" || scoville_die "no free port for the server"
server_url="http://127.0.0.1:$port"
scoville_log "server: starting on 127.0.0.1:$port (log: $tmp/server.log)"
env APP_ENV=development HTTP_ADDR="127.0.0.1:$port" LOG_LEVEL="${LOG_LEVEL:-warn}" MIGRATE_ON_START=true \
	OIDC_ISSUER_URL="$idp_url" OIDC_AUDIENCE=scoville-api \
	STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}" STRIPE_WEBHOOK_SECRET=whsec_bench_read \
	DATABASE_URL="$DATABASE_URL" STRIPE_API_BASE="$STRIPE_API_BASE" \
	RATE_LIMIT_ADDRESS_PER_MINUTE=1000000 RATE_LIMIT_QUERIES_PER_MINUTE=1000000 \
	RATE_LIMIT_INFLIGHT_PER_CALLER=10000 RATE_LIMIT_INFLIGHT_PER_ADDRESS=100000 "${pprof_env[@]}" \
	"$server_bin" >"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!
scoville_await "$server_pid" "$server_url/readyz" 60 "the server did not become ready ($server_url/readyz)" "$tmp/server.log"

# ---- data: customers with subscriptions, tokens, pgbench's tables.
"$tmp/readload" -database-url "$DATABASE_URL" -issuer "$idp_url" -customers "$customers" -tokens "$tokens" \
	-out "$tmp/tokens.txt" || scoville_die "seeding the read benchmark failed"
scoville_run "$pgbench" -i -q -s "$scale" "$DATABASE_URL" >"$tmp/pgbench-init.log" 2>&1 || {
	scoville_show_log "$tmp/pgbench-init.log"
	scoville_die "pgbench -i failed"
}
scoville_sql "VACUUM ANALYZE" >/dev/null

query='{ me { id email subscriptions { id status plan { name interval price { amount currency } } } } }'
body="$(printf '{"query":"%s"}' "$query")"
# One request first: the answer must be a customer with subscriptions and no error.
check="$(curl -sS -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $(head -n 1 "$tmp/tokens.txt")" \
	--data "$body" "$server_url/graphql")" || scoville_die "the check request failed"
if [[ $check == *'"errors"'* || $check != *'"subscriptions":[{'* ]]; then
	scoville_show_log "$tmp/server.log"
	scoville_die "the check request did not return a customer with subscriptions: ${check:0:300}"
fi

cat >"$tmp/me.lua" <<LUA
-- Each request carries the next token of the file named by the first argument;
-- each thread starts at its own place in the list.
local tokens = {}
local n = 0
local body = '$body'
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("id", threads)
end
function init(args)
	for line in io.lines(args[1]) do
		if line ~= "" then tokens[#tokens + 1] = line end
	end
	n = (id or 1) * 7919 % #tokens
end
function request()
	n = n % #tokens + 1
	return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[n]}, body)
end
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status=%d socket=%d\n",
		summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
		e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

cpu_seconds() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
		echo 0
		return
	}
	awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / t }' <<<"${stat##*) }"
}
# pg_cpu_seconds: CPU of every process of the throwaway cluster, the backends that
# ended included (the postmaster has waited for them); 0 with DATABASE_URL set.
pg_cpu_seconds() {
	local pm total=0 child stat
	[[ -n ${_SCOVILLE_PGDATA:-} && -f $_SCOVILLE_PGDATA/postmaster.pid ]] || {
		echo 0
		return
	}
	pm="$(head -n 1 "$_SCOVILLE_PGDATA/postmaster.pid")"
	for child in "$pm" $(pgrep -P "$pm" 2>/dev/null); do
		stat="$(cat "/proc/$child/stat" 2>/dev/null)" || continue
		total="$(awk -v a="$total" -v t="$(getconf CLK_TCK)" '{ printf "%.2f", a + ($12 + $13 + $14 + $15) / t }' <<<"${stat##*) }")"
	done
	printf '%s\n' "$total"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

: >"$tmp/rounds.txt"
failed=0
for ((r = 1; r <= rounds; r++)); do
	scoville_sql "CHECKPOINT" >/dev/null 2>&1 || true
	scoville_log "round $r/$rounds: pgbench -S, $connections clients, ${seconds}s"
	pgcpu0="$(pg_cpu_seconds)"
	scoville_run "$pgbench" -n -S -c "$connections" -j 2 -T "$seconds" "$DATABASE_URL" >"$tmp/pgbench.log" 2>&1 || {
		scoville_show_log "$tmp/pgbench.log"
		scoville_die "pgbench failed"
	}
	tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$tmp/pgbench.log")"
	[[ -n $tps ]] || scoville_die "could not read tps from pgbench's output"
	pgcpu1="$(pg_cpu_seconds)"
	txns="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/pgbench.log")"

	scoville_log "round $r/$rounds: wrk -t2 -c$connections -d${seconds}s, $tokens callers"
	cpu0="$(cpu_seconds "$server_pid")"
	pgcpu2="$(pg_cpu_seconds)"
	: >"$tmp/rss.txt"
	(while kill -0 "$server_pid" 2>/dev/null; do
		rss_kib "$server_pid" >>"$tmp/rss.txt"
		sleep 0.5
	done) &
	sampler=$!
	profiler=
	if [[ $profile == 1 && $r -eq $rounds ]]; then
		(sleep 1
			curl -s -m $((profile_seconds + 30)) -o "$tmp/allocs.pprof" \
				"http://127.0.0.1:$pprof_port/debug/pprof/allocs?seconds=$profile_seconds" &
			curl -s -m $((profile_seconds + 30)) -o "$tmp/cpu.pprof" \
				"http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$profile_seconds"
			wait
			curl -s -m 30 -o "$tmp/heap.pprof" "http://127.0.0.1:$pprof_port/debug/pprof/heap") &
		profiler=$!
	fi
	wrk -t2 -c "$connections" -d "${seconds}s" -s "$tmp/me.lua" "$server_url/graphql" -- "$tmp/tokens.txt" >"$tmp/wrk.log" 2>&1 || true
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	cpu1="$(cpu_seconds "$server_pid")"
	pgcpu3="$(pg_cpu_seconds)"
	if [[ -n $profiler ]]; then
		wait "$profiler" || true
		mkdir -p "$profile_dir"
		for f in cpu allocs heap; do
			[[ ! -s $tmp/$f.pprof ]] || cp "$tmp/$f.pprof" "$profile_dir/$f.pprof"
		done
		cp "$server_bin" "$profile_dir/scoville"
		scoville_log "profiles of round $r: go tool pprof -top $profile_dir/scoville $profile_dir/cpu.pprof (allocs.pprof: -sample_index=alloc_space; heap.pprof: in use after wrk)"
	fi
	line="$(grep '^BENCH ' "$tmp/wrk.log" || true)"
	[[ -n $line ]] || {
		scoville_show_log "$tmp/wrk.log"
		scoville_die "wrk printed no summary"
	}
	get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${line#BENCH }"; }
	requests="$(get requests)" duration="$(get duration_us)" p50="$(get p50_us)" p99="$(get p99_us)"
	status="$(get status)" socket="$(get socket)"
	rss="$(sort -n "$tmp/rss.txt" | tail -n 1)"
	if [[ $status -ne 0 || $socket -ne 0 ]]; then
		failed=1
	fi
	awk -v tps="$tps" -v n="$requests" -v d="$duration" -v p50="$p50" -v p99="$p99" -v rss="${rss:-0}" \
		-v c0="$cpu0" -v c1="$cpu1" -v st="$status" -v so="$socket" \
		-v q0="$pgcpu0" -v q1="$pgcpu1" -v q2="$pgcpu2" -v q3="$pgcpu3" -v tx="${txns:-0}" 'BEGIN {
		rps = n / (d / 1e6)
		printf "%.1f %.1f %.1f %.2f %.2f %.1f %.0f %d %d %.0f %.0f\n", tps, rps, 100 * rps / tps, p50 / 1000, p99 / 1000, rss / 1024, 1e6 * (c1 - c0) / n, st, so,
			(tx > 0 ? 1e6 * (q1 - q0) / tx : 0), 1e6 * (q3 - q2) / n
	}' >>"$tmp/rounds.txt"
	scoville_log "round $r/$rounds: $(tail -n 1 "$tmp/rounds.txt")"
done

# ---- a clean shutdown logs no ERROR.
kill -TERM "$server_pid" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.1
done
errors_logged="$(grep -c '"level":"ERROR"' "$tmp/server.log" || true)"

median_ratio="$(scoville_median 3 %.1f "$tmp/rounds.txt")"
median_p99="$(scoville_median 5 %.2f "$tmp/rounds.txt")"
max_rss="$(awk '{ print $6 }' "$tmp/rounds.txt" | sort -g | tail -n 1)"
verdict() { if awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { exit !((op == ">=") ? v >= t : v <= t) }'; then echo met; else echo "NOT MET"; fi; }

cat <<REPORT

============================================================================
 Read path benchmark ($connections connections, one database, $rounds rounds of ${seconds}s)
 $(scoville_sql "SELECT concat_ws(' ', 'PostgreSQL', current_setting('server_version'), 'fsync=' || current_setting('fsync'), 'shared_buffers=' || current_setting('shared_buffers'))")
 $customers customers with 1-3 subscriptions, $tokens callers; pgbench -S scale $scale
 query: $query
----------------------------------------------------------------------------
 round  pgbench tps    req/s  req/pgbench  p50 / p99 ms   RSS MiB  CPU/req  PG/txn  PG/req
REPORT
awk '{ printf " %5d %11.1f %8.1f %10.1f %%  %5.2f / %-6.2f %7.1f %6d us %5d us %5d us%s\n", NR, $1, $2, $3, $4, $5, $6, $7, $10, $11, ($8 + $9 > 0 ? "  FAILED: " $8 " non-2xx, " $9 " socket errors" : "") }' "$tmp/rounds.txt"
cat <<REPORT
----------------------------------------------------------------------------
 (RSS: the server's highest sampled while wrk ran; CPU/req: the server's CPU per request;
  PG/txn: PostgreSQL's CPU per pgbench transaction; PG/req: PostgreSQL's CPU per request)
 req/s / pgbench tps   median $median_ratio %   target >= 40 %: $(verdict "$median_ratio" 40 ">=")
 p99                   median $median_p99 ms   target <= 15 ms: $(verdict "$median_p99" 15 "<=")
 server RSS            highest $max_rss MiB   target <= 50 MiB: $(verdict "$max_rss" 50 "<=")
 ERROR lines in the server's log, shutdown included: $errors_logged
============================================================================
REPORT
exit "$failed"
