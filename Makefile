.PHONY: run test lint bench

# Install what is missing, make sure PostgreSQL and Redis answer, migrate, seed the demo tenant and start
# the console, the runtime, the dev model, the Celery worker and beat.
run:
	bash scripts/run.sh

# The same set-up, then lint, the migrations check and the whole test suite.
test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	.venv/bin/python bench/engine.py
