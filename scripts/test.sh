#!/usr/bin/env bash
# make test: go vet, then the whole test suite with the race detector against a
# throwaway PostgreSQL and stripe-mock (both stopped and removed on exit).
#
#   DATABASE_URL     use this PostgreSQL (superuser URL) instead of a throwaway one
#   STRIPE_API_BASE  use this stripe-mock instead of starting one
#   TEST_ARGS        extra go test flags, e.g. TEST_ARGS='-run TestPlans -v'
#   TEST_PKGS        packages to test instead of ./..., e.g. TEST_PKGS=./auth/...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

# Before anything is built: what the run needs from the machine (installed as
# root with apt-get, else a stop with the command to run).
needs=(postgresql curl)
case " ${TEST_PKGS:-./...} " in
*" ./... "* | *" ./e2e "* | *" ./e2e/... "*) needs+=(chromium) ;; # the Playground browser test (e2e)
esac
scoville_require "${needs[@]}"

scoville_log "go vet ./..."
go vet ./...

start_postgres
start_stripe_mock
export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_123}"

extra=()
if [[ -n ${TEST_ARGS:-} ]]; then
	read -r -a extra <<<"$TEST_ARGS"
fi
pkgs=(./...)
if [[ -n ${TEST_PKGS:-} ]]; then
	read -r -a pkgs <<<"$TEST_PKGS"
fi

scoville_log "go test -race -count=1 -timeout 15m${extra[*]:+ ${extra[*]}} ${pkgs[*]}"
status=0
scoville_run go test -race -count=1 -timeout 15m "${extra[@]}" "${pkgs[@]}" || status=$?

# Fuzz targets, each for a bounded number of inputs beyond its committed seed corpus
# (testdata/fuzz/<target>), which the run above already replays. FUZZ_TIME=0 skips.
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can report
# its own deadline as a failure ("context deadline exceeded", no crasher;
# golang/go#75804, fixed in Go 1.27). 50,000 inputs take 3-6 s per target here.
# A target may name its own count after a second colon: FuzzValidationWork's inputs
# are whole documents at the validation budget, each costing milliseconds.
fuzz_time="${FUZZ_TIME:-50000x}"
if [[ -z ${TEST_ARGS:-}${TEST_PKGS:-} && $fuzz_time != 0 ]]; then
	for target in FuzzWebhookRoute:./webhooks FuzzEnvelopeReadsAsEncodingJSON:./webhooks FuzzNormalizeAddress:./subscriptions \
		FuzzOriginsCheck:./subscriptions FuzzGraphQLRequest:./graph FuzzValidationWork:./graph:5000x; do
		name="${target%%:*}" rest="${target#*:}"
		pkg="${rest%%:*}" count="$fuzz_time"
		if [[ $rest == *:* && -z ${FUZZ_TIME:-} ]]; then
			count="${rest#*:}"
		fi
		scoville_log "go test -run='^\$' -fuzz='^${name}\$' -fuzztime=$count $pkg"
		scoville_run go test -run='^$' -fuzz="^${name}\$" -fuzztime="$count" "$pkg" || status=$?
	done
fi
exit "$status"
