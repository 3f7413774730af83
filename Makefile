# messages-service: `make run` starts everything and serves on :8080; `make test` runs every test.
# Both work as root on a fresh Debian/Ubuntu machine: they install what is missing first.

SWIFT ?= swift
PG_PORT ?= 5432
REDIS_PORT ?= 6379
AMQP_PORT ?= 5672
PGBOUNCER_PORT ?= 6432
export PG_PORT REDIS_PORT AMQP_PORT PGBOUNCER_PORT
export DATABASE_URL ?= postgres://messages@127.0.0.1:$(PG_PORT)/messages
export REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:$(AMQP_PORT)/%2F

.PHONY: run test test-unit services services-stop build migrate validate format clean token bench verify release

## Start Postgres, Redis and RabbitMQ under .local/ (idempotent).
services:
	tools/services.sh start

## Stop exactly the servers `make services` started.
services-stop:
	tools/services.sh stop

build:
	tools/services.sh install
	$(SWIFT) build

migrate: build services
	.build/debug/messages-service migrate

# `make run` uses AUTH_MODE=jwt with a development secret kept in .local/ (unless JWT_SECRET is set),
# and signs page cursors with a key kept there too (unless CURSOR_SECRET is set), so cursors survive
# a restart. Every caller may use every channel (CHANNEL_ACCESS=open) unless CHANNEL_ACCESS=members.
# With the development secret (no JWT_SECRET of yours), POST /dev/token mints tokens for the chat
# page's sign-in button (DEV_TOKENS); the page is at http://localhost:8080/app/.
DEV_TOKENS_DEFAULT := $(if $(JWT_SECRET),false,true)
DEV_JWT_SECRET_FILE := .local/dev-jwt-secret
DEV_JWT_SECRET = $${JWT_SECRET:-$$(cat $(DEV_JWT_SECRET_FILE))}
DEV_CURSOR_SECRET_FILE := .local/dev-cursor-secret
DEV_CURSOR_SECRET = $${CURSOR_SECRET:-$$(cat $(DEV_CURSOR_SECRET_FILE))}

$(DEV_JWT_SECRET_FILE) $(DEV_CURSOR_SECRET_FILE):
	@mkdir -p .local
	@head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $@

## Install, start the servers, migrate, and serve the API on :8080 (LOG_FORMAT=text for humans).
run: migrate $(DEV_JWT_SECRET_FILE) $(DEV_CURSOR_SECRET_FILE)
	@echo "AUTH_MODE=jwt; get a development token with: make token SUB=<user uuid> [ROLES=moderator]"
	@echo "chat page: http://localhost:$${PORT:-8080}/app/   API reference: http://localhost:$${PORT:-8080}/docs/"
	JWT_SECRET=$(DEV_JWT_SECRET) CURSOR_SECRET=$(DEV_CURSOR_SECRET) LOG_FORMAT=$${LOG_FORMAT:-text} \
		CHANNEL_ACCESS=$${CHANNEL_ACCESS:-open} DEV_TOKENS=$${DEV_TOKENS:-$(DEV_TOKENS_DEFAULT)} \
		.build/debug/messages-service serve

## Print a development JWT for `make run`: make token SUB=<user uuid> [ROLES=moderator] [TTL=1h]
token: $(DEV_JWT_SECRET_FILE)
	@test -x .build/debug/messages-service || $(SWIFT) build >&2
	@JWT_SECRET=$(DEV_JWT_SECRET) .build/debug/messages-service token --sub "$(SUB)" --roles "$(ROLES)" --ttl "$${TTL:-1h}"

## Install, start the servers, and run every test against them.
test: services
	$(SWIFT) build --build-tests
	tools/run-tests.sh
	MESSAGES_PARTITIONS=8 DATABASE_URL=postgres://messages@127.0.0.1:$(PG_PORT)/messages_partitioned tools/run-tests.sh
	PG_TRANSACTION_POOLING=true DATABASE_URL=postgres://messages@127.0.0.1:$(PGBOUNCER_PORT)/messages_pgbouncer \
		DATABASE_SESSION_URL=postgres://messages@127.0.0.1:$(PG_PORT)/messages_pgbouncer tools/run-tests.sh
	tools/test-services.sh
	tools/crash-hunt.sh
	tools/schemathesis.sh
	tools/browser-tests.sh
	tools/fuzz.sh $(FUZZ_SECONDS)

## Fuzz the request decoders with libFuzzer for FUZZ_SECONDS (60); crashing inputs land in .local/fuzz/.
## Builds into .build-fuzz, not .build; see tools/fuzz.sh.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	tools/fuzz.sh $(FUZZ_SECONDS)

## The tests that need no server (every suite not tagged .servers: pure logic, configuration, the pool,
## the circuit breaker): no root, seconds.
test-unit:
	$(SWIFT) build --build-tests
	tools/run-tests.sh --unit

## Point production at a release: make release TAG=v0.1.1 DIGEST=sha256:<64 hex> sets the prod overlay's
## image digest and the prod Argo CD Application's targetRevision (tools/release.py); commit, tag, push.
release:
	python3 tools/release.py --tag "$(TAG)" --digest "$(DIGEST)"

## Benchmark the release build on this machine (wrk, pgbench, redis-benchmark); report in bench-results/.
## BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_SKIP_BUILD=1: see tools/bench.sh --help.
## BASELINE=<git revision> also builds and measures that revision, for a before/after table.
bench:
	BASELINE="$(BASELINE)" bash tools/bench.sh run

## Correctness under load: tools/seed_verify.py against a fresh service (VERIFY_ARGS to change N, C, K).
verify:
	bash tools/bench.sh verify

## Check the deployment files offline (Kong, Kubernetes, compose).
validate:
	bash tools/validate.sh

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean: services-stop
	rm -rf .build .build-fuzz .local
