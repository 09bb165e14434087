# chirpbase: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: demo test deps deno db-up db-down db-migrate lint format typecheck bench soak clean

deps: ## install Python (uv) and the locked dependencies
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@uv sync --frozen --all-groups --quiet

db-up: ## start the local PostgreSQL 15 + pg_cron + wal2json stack (installs it when missing)
	@bash scripts/pg.sh start

db-down: ## stop the local database
	@bash scripts/pg.sh stop

db-migrate: deps db-up ## apply supabase/migrations to the local database
	@uv run chirpbase db migrate --database-url "$$(bash scripts/pg.sh url)"

demo: deps db-up ## run the whole loop against the local sandbox and write a report
	@uv run python -m sandbox.demo

deno: ## install Deno (npm registry) and the edge functions' npm dependencies into .local/
	@bash scripts/deno.sh cache --config supabase/functions/deno.json supabase/functions/x-webhook/index.ts

test: deps db-up deno ## run the whole test suite (Python and Deno) on the local stack
	@uv run pytest -q

lint: deps
	@uv run ruff check .
	@uv run ruff format --check .
	@uv run mypy

format: deps
	@uv run ruff format .
	@uv run ruff check --fix .

typecheck: deps
	@uv run mypy

bench: deps db-up ## run the benchmarks (each prints ratios measured in the same run)
	@for b in bench/[a-z]*.py; do echo "== $$b"; uv run --group bench python -m bench.$$(basename $$b .py) || exit 1; done

clean: db-down
	@rm -rf .local reports
