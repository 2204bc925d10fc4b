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

# Benchmarks print figures and ratios against a baseline measured in the same run (needs `make run`'s database).
bench:
	.venv/bin/python bench/engine.py
	.venv/bin/python bench/runtime.py
	.venv/bin/python bench/proofs.py
