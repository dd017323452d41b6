# Scoville developer commands. `make` alone lists them.

GO  ?= go
BIN := bin/scoville

# Passed through to scripts/test.sh: make test TEST_ARGS='-run TestPlans -v'
export TEST_ARGS
export TEST_PKGS

.DEFAULT_GOAL := help
.PHONY: help run test bench bench-webhooks bench-read bench-burst generate lint build migrate playground-assets image image-check

help: ## list the targets
	@echo "Usage: make <target>"
	@echo
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-15s %s\n", $$1, $$2}'
	@echo
	@echo "make test TEST_ARGS='-run TestX -v' TEST_PKGS=./auth/...   narrows the tests"
	@echo "DATABASE_URL / STRIPE_API_BASE, when set, are used instead of throwaway ones"

run: ## run everything locally (PostgreSQL, stripe-mock, dev identity provider, server) and print Playground tokens
	@bash scripts/run.sh

test: ## go vet, then all tests with -race against a throwaway PostgreSQL and stripe-mock
	@bash scripts/test.sh

bench: ## the benchmarks reported in the README
	@bash scripts/bench.sh

bench-webhooks: ## webhook acknowledgements under load (10,000 events x 2) against a pgbench insert baseline
	@bash scripts/bench-webhooks.sh

bench-read: ## the authenticated read path under wrk (32 connections) against pgbench -S on the same database
	@bash scripts/bench-read.sh

bench-burst: ## the renewal burst drained after the last ack (10,000 events; 1,000 for one subscription) with and without an outgoing webhook endpoint
	@bash scripts/bench-burst.sh

generate: ## regenerate the GraphQL code (gqlgen)
	$(GO) tool gqlgen generate

.PHONY: clients clients-check
clients: ## regenerate the client kit: clients/schema.graphql, the TypeScript client and the persisted-documents manifest
	$(GO) run ./cmd/printschema > clients/schema.graphql.tmp && mv clients/schema.graphql.tmp clients/schema.graphql
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npx graphql-codegen --config codegen.ts

clients-check: ## CI's check of the client kit: regenerated output equal to the committed, tsc, the Node example and the graphql-http audit against a real server
	@bash scripts/clients-check.sh

playground-assets: ## re-fetch the Playground's GraphiQL/React files from npm (versions in playground/fetch-assets.sh)
	@bash playground/fetch-assets.sh

lint: ## go vet, staticcheck, a gofmt check and the Prometheus alerting rules (cmd/checkrules)
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) run ./cmd/checkrules
	@unformatted="$$(gofmt -l .)" || { echo "gofmt failed" >&2; exit 1; }; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files are not formatted (run: gofmt -w <file>):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi

build: ## build bin/scoville
	$(GO) build -o $(BIN) .

image: ## build the OCI image with buildah (IMAGE, default localhost/scoville:latest): scratch, static binary, CA bundle, uid 65532
	@bash scripts/image.sh

image-check: ## build the image and run its binary in production mode (migrate, serve, work) against a throwaway PostgreSQL
	@bash scripts/image-check.sh

migrate: build ## apply database migrations to DATABASE_URL
	@if [ -z "$$DATABASE_URL" ]; then echo "error: set DATABASE_URL (the database to migrate)" >&2; exit 1; fi
	./$(BIN) migrate
