#!/usr/bin/env bash
# make bench: the benchmarks whose figures the README reports, against a throwaway
# PostgreSQL and stripe-mock (or DATABASE_URL / STRIPE_API_BASE when set).
#   BENCH_ARGS  go test flags, default: -bench . -benchtime 3s -cpu 2
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

start_postgres
start_stripe_mock
export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}"
args=(-bench . -benchtime 3s -cpu 2)
if [[ -n ${BENCH_ARGS:-} ]]; then
	read -r -a args <<<"$BENCH_ARGS"
fi
scoville_run go test -run '^$' "${args[@]}" ./...
