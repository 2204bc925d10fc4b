#!/usr/bin/env bash
# Lint and test CONTRACTOR (`make test`, and CI through .ci/run):
#   set-up (scripts/setup.sh: .venv with requirements.txt + requirements-dev.txt, PostgreSQL, Redis),
#   Chromium for the browser tests, ruff check, ruff format --check, makemigrations --check, pytest.
# Arguments go to pytest: bash scripts/test.sh tests/runtime -x -k execute
# Stops at the first failing step with its exit code. pytest collecting no test (exit 5) is a failure.
# CONTRACTOR_BROWSER_TESTS=0: don't install Chromium (the browser tests then skip themselves).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/setup.sh
. "$ROOT/scripts/setup.sh"
# shellcheck source=scripts/services.sh
. "$ROOT/scripts/services.sh"

PY="$ROOT/.venv/bin/python"
export DJANGO_SETTINGS_MODULE=contractor_site.settings.test

say() { printf '[test] %s\n' "$*"; }

ensure_chromium
# The test OpenID provider of the single sign-on tests (npm ci only when its lock file changed).
bash "$ROOT/scripts/oidc-provider-setup.sh"

for tool in ruff pytest; do
  if [ ! -x "$ROOT/.venv/bin/$tool" ]; then
    say "$tool is not installed in .venv: it belongs in requirements-dev.txt" >&2
    exit 1
  fi
done
[ -f manage.py ] || {
  say "manage.py not found in $ROOT" >&2
  exit 1
}

# step NAME CMD...: run CMD; on failure report NAME and exit with its code.
step() {
  local name="$1" rc=0
  shift
  say "$name"
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "FAILED: $name (exit $rc)" >&2
    exit "$rc"
  fi
}

step "ruff check" "$ROOT/.venv/bin/ruff" check .
step "ruff format --check" "$ROOT/.venv/bin/ruff" format --check .
step "makemigrations --check" "$PY" manage.py makemigrations --check --dry-run

# CI starts from a fresh test database; developers keep --reuse-db (pyproject.toml) for speed.
fresh=()
if [ -n "${CI:-}" ]; then
  fresh=(--create-db)
fi
say "pytest ${fresh[*]} $*"
rc=0
"$PY" -m pytest "${fresh[@]}" "$@" || rc=$?
case "$rc" in
  0) say "all checks passed" ;;
  5)
    say "FAILED: pytest collected no tests (exit 5); a run that tests nothing is a failure" >&2
    exit 1
    ;;
  *)
    say "FAILED: pytest (exit $rc)" >&2
    exit "$rc"
    ;;
esac
