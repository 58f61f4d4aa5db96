# Two commands: `make run` and `make test`. Each sets itself up on a fresh machine.
DATA_DIR ?= data
VENV := .venv/bin

.PHONY: run test lint typecheck imports unit bootstrap bootstrap-test bench clean

bootstrap:
	@scripts/bootstrap.sh

bootstrap-test:
	@scripts/bootstrap.sh test

HOST ?= 127.0.0.1
PORT ?= 8000

## Start Citizen Vault on the embedded default (SQLite + local keyring in $(DATA_DIR)) with demo data and the
# development sign-in page (serve --demo); it prints the address to open and who to sign in as.
# The issuer names the address the service answers on, so printed commands and tokens match it.
run: bootstrap
	@CITIZEN_VAULT_ISSUER=$${CITIZEN_VAULT_ISSUER:-http://$(HOST):$(PORT)} $(VENV)/citizen-vault --data-dir $(DATA_DIR) demo
	@CITIZEN_VAULT_ISSUER=$${CITIZEN_VAULT_ISSUER:-http://$(HOST):$(PORT)} exec $(VENV)/citizen-vault --data-dir $(DATA_DIR) serve --demo --host $(HOST) --port $(PORT)

## The whole suite: lint, types, import direction, tests (real SQLite, PostgreSQL, SoftHSM2).
test: bootstrap-test lint typecheck imports unit

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck:
	$(VENV)/mypy

imports:
	$(VENV)/lint-imports

unit:
	$(VENV)/pytest -n 2 --dist loadfile

## Benchmarks (not part of the suite): figures go to docs/benchmarks.md by hand.
bench:
	@scripts/bootstrap.sh bench
	$(VENV)/python -m bench.run_all

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
