# chirpbase: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: demo console test deps deno supabase twitter-text chromium db-up db-down db-push db-migrate \
	db-lint lint format typecheck import-graph image image-test bench soak clean

deps: ## install Python (uv) and the locked dependencies
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@uv sync --frozen --all-groups --all-extras --quiet

db-up: ## start the local PostgreSQL 15 + pg_cron + wal2json stack (installs it when missing)
	@bash scripts/pg.sh start

db-down: ## stop the local database
	@bash scripts/pg.sh stop

supabase: ## install the Supabase CLI (npm registry, pinned) into .local/
	@bash scripts/supabase.sh path >/dev/null

db-push: db-up supabase ## apply supabase/migrations to the local database with `supabase db push`
	@bash scripts/supabase.sh db push --db-url "$$(bash scripts/pg.sh url)" --include-all --yes

db-migrate: deps db-up ## the same with `chirpbase db migrate`, the path for places without the CLI
	@uv run chirpbase db migrate --database-url "$$(bash scripts/pg.sh url)"

# plpgsql_check over every function, by `supabase db lint` (any warning fails), and over the
# trigger functions it skips. In `postgres`, the database pg_cron lives in.
db-lint: db-push
	@bash scripts/pg.sh lint-setup
	@bash scripts/supabase.sh db lint --db-url "$$(bash scripts/pg.sh url)" --level warning --fail-on warning
	@bash scripts/pg.sh lint-triggers

demo: deps db-up ## run the whole loop against the local sandbox and write a report
	@uv run python -m sandbox.demo

console: deps db-up ## the sandbox and the operator console, kept running for you to try (Ctrl-C ends it)
	@uv run python -m sandbox.demo --console

chromium: ## install Chromium (Debian) for the console's browser tests
	@bash scripts/chromium.sh >/dev/null

deno: ## install Deno (npm registry) and the edge functions' npm dependencies into .local/
	@bash scripts/deno.sh cache --config supabase/functions/deno.json supabase/functions/x-webhook/index.ts

twitter-text: ## install npm twitter-text 3.1.0 (X's reference counter, for the tests) into .local/
	@bash scripts/twitter-text.sh >/dev/null

test: deps db-up deno supabase twitter-text chromium ## run the whole test suite (Python and Deno) on the local stack
	@uv run pytest -q

image: ## build the worker image from the Dockerfile with buildah (no Docker engine needed)
	@bash scripts/image.sh build

image-test: deps db-up supabase ## run the built image's worker against the sandbox and the local database
	@uv run pytest -q -m image tests/image

lint: deps db-lint
	@uv run ruff check .
	@uv run ruff format --check .
	@uv run mypy
	@uv run lint-imports --no-cache >/dev/null || uv run lint-imports --no-cache
	@uv run python scripts/import_graph.py --check

import-graph: deps ## redraw docs/imports.md (who imports whom in worker/)
	@uv run python scripts/import_graph.py

format: deps
	@uv run ruff format .
	@uv run ruff check --fix .

typecheck: deps
	@uv run mypy

bench: deps db-up ## run the benchmarks (each prints ratios measured in the same run)
	@failed=""; for b in bench/[a-z]*.py; do echo "== $$b"; \
	  uv run --group bench python -m bench.$$(basename $$b .py) || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "== goals missed or errors in:$$failed"; exit 1; fi

# The chaos test longer and larger, once per seed (figures printed, and appended as JSON lines to
# reports/soak.jsonl), then the 60 s database outage. Override e.g. `make soak SOAK_SEEDS="7 8"`.
SOAK_SEEDS ?= 101 102 103
SOAK_JOBS ?= 20000
SOAK_DURATION_S ?= 240
soak: deps ## chaos soak: CHAOS_JOBS=$(SOAK_JOBS) for $(SOAK_DURATION_S) s of chaos per seed in $(SOAK_SEEDS)
	@mkdir -p reports
	@for seed in $(SOAK_SEEDS); do \
	  echo "== chaos soak, seed $$seed: $(SOAK_JOBS) jobs, $(SOAK_DURATION_S) s of chaos"; \
	  CHAOS_SEED=$$seed CHAOS_JOBS=$(SOAK_JOBS) CHAOS_DURATION_S=$(SOAK_DURATION_S) \
	  CHAOS_DRAIN_S=300 CHAOS_REPORT=$(CURDIR)/reports/soak.jsonl \
	    uv run pytest -q -s -p no:cacheprovider tests/chaos/test_chaos.py || exit 1; \
	done
	@uv run pytest -q -s -p no:cacheprovider tests/chaos/test_db_outage.py

clean: db-down
	@rm -rf .local reports
