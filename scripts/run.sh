#!/usr/bin/env bash
# Run CONTRACTOR locally (`make run`): set up, migrate, seed the demo tenant, then start and supervise
#
#   devmodel  python -m devmodel                      http://127.0.0.1:$DEVMODEL_PORT  (8002)
#   web       gunicorn contractor_site.wsgi (console/admin/API, threads) http://*.localhost:$WEB_PORT (8000)
#   runtime   gunicorn runtime.wsgi (threads, bounded model calls) http://*.localhost:$RUNTIME_PORT (8001)
#   worker    celery worker
#   beat      celery beat (schedule in .run/)
#
# Output of each is prefixed with its name. Ctrl-C (or TERM) stops them all; if one exits, the others are
# stopped and this script exits non-zero, naming it. Logs of the set-up steps: .run/*.log.
# Environment: WEB_PORT, RUNTIME_PORT, DEVMODEL_PORT, STARTUP_TIMEOUT (s, default 90),
# STOP_TIMEOUT (s, default 10), plus whatever scripts/setup.sh reads (DATABASE_URL, REDIS_URL).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
  echo "scripts/run.sh needs bash >= 5.1 (wait -n -p); this is $BASH_VERSION" >&2
  exit 1
fi

# shellcheck source=scripts/setup.sh
. "$ROOT/scripts/setup.sh"

PY="$ROOT/.venv/bin/python"
RUN_DIR="$ROOT/.run"
WEB_PORT="${WEB_PORT:-8000}"
RUNTIME_PORT="${RUNTIME_PORT:-8001}"
DEVMODEL_PORT="${DEVMODEL_PORT:-8002}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-90}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"
export PYTHONUNBUFFERED=1
export CONTRACTOR_DEV_MODEL_URL="${CONTRACTOR_DEV_MODEL_URL:-http://127.0.0.1:$DEVMODEL_PORT/v1}"
mkdir -p "$RUN_DIR"

say() { printf '[run] %s\n' "$*"; }
die() {
  printf '[run] error: %s\n' "$*" >&2
  exit 1
}

[ -f manage.py ] || die "manage.py not found in $ROOT"

# step NAME CMD...: run a set-up command quietly into .run/NAME.log; on failure show its tail and stop.
step() {
  local name="$1" log="$RUN_DIR/$1.log" rc=0
  shift
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '[run] %s failed (exit %s); last lines of .run/%s.log:\n' "$name" "$rc" "$name" >&2
    tail -n 30 "$log" | sed 's/^/    /' >&2
    exit "$rc"
  fi
  say "$name: ok (log: .run/$name.log)"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for spec in "WEB_PORT:$WEB_PORT" "RUNTIME_PORT:$RUNTIME_PORT" "DEVMODEL_PORT:$DEVMODEL_PORT"; do
  if port_busy "${spec#*:}"; then
    die "port ${spec#*:} is already in use (another run.sh still running?); stop it or set ${spec%%:*}=<free port>"
  fi
done

step migrate "$PY" manage.py migrate_schemas --noinput
step collectstatic "$PY" manage.py collectstatic --noinput -v 0
say "seed_demo:"
SEED_LOG="$RUN_DIR/seed_demo.log"
if ! "$PY" manage.py seed_demo 2>&1 | tee "$SEED_LOG"; then
  die "seed_demo failed (output above, also in .run/seed_demo.log)"
fi

# ---------------------------------------------------------------------------------------------------
# supervision

PIDS=()
NAMES=()
CLEANED=0

# start NAME CMD...: CMD in its own session/process group (so stopping it takes its workers along),
# stdout+stderr prefixed with [NAME]. The prefixing sed ignores Ctrl-C so shutdown messages still show.
start() {
  local name="$1"
  shift
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" </dev/null > >(trap '' INT && exec sed -u "s/^/[$name] /") 2>&1 &
  else
    "$@" </dev/null > >(trap '' INT && exec sed -u "s/^/[$name] /") 2>&1 &
  fi
  PIDS+=("$!")
  NAMES+=("$name")
}

name_of() {
  local i
  for i in "${!PIDS[@]}"; do
    if [ "${PIDS[$i]}" = "$1" ]; then
      printf '%s\n' "${NAMES[$i]}"
      return 0
    fi
  done
  printf 'pid %s\n' "$1"
}

alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

# Stop every child (TERM to its process group, KILL after STOP_TIMEOUT seconds), then reap them.
cleanup() {
  [ "$CLEANED" -eq 0 ] || return 0
  CLEANED=1
  local pid any=0 deadline
  for pid in "${PIDS[@]}"; do
    alive "$pid" && any=1
  done
  if [ "$any" -eq 1 ]; then
    say "stopping ${NAMES[*]} ..."
    for pid in "${PIDS[@]}"; do
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + STOP_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
      any=0
      for pid in "${PIDS[@]}"; do
        alive "$pid" && any=1
      done
      [ "$any" -eq 1 ] || break
      sleep 0.2
    done
    for pid in "${PIDS[@]}"; do
      if alive "$pid"; then
        say "$(name_of "$pid") did not stop within ${STOP_TIMEOUT}s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  fi
  wait 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by trap
on_signal() {
  # A second signal (make passes its own TERM on, a second Ctrl-C) must not cut the clean-up short: it
  # stops every service within STOP_TIMEOUT seconds, killing what does not stop.
  trap '' INT TERM
  printf '\n'
  say "got SIG$1"
  cleanup
  say "stopped"
  [ "$1" = INT ] && exit 130
  exit 143
}

trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'cleanup' EXIT

if "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("devmodel") is None)' 2>/dev/null; then
  start devmodel "$PY" -m devmodel --host 127.0.0.1 --port "$DEVMODEL_PORT"
else
  say "devmodel: package not found, dev model server not started"
fi
# gunicorn with a fixed pool of threads: database connections stay bounded (contractor_site/gunicorn_console.py).
start web env CONSOLE_BIND="0.0.0.0:$WEB_PORT" CONSOLE_RELOAD=1 \
  "$ROOT/.venv/bin/gunicorn" contractor_site.wsgi --config python:contractor_site.gunicorn_console
# Prometheus counters aggregated across the runtime's workers (runtime/metrics.py): a fresh directory per run.
METRICS_DIR="$RUN_DIR/runtime-metrics"
rm -rf "$METRICS_DIR" && mkdir -p "$METRICS_DIR"
# gunicorn with threads and a worker timeout above the model timeout cap (runtime/gunicorn_runtime.py).
start runtime env DJANGO_SETTINGS_MODULE=contractor_site.settings.runtime PROMETHEUS_MULTIPROC_DIR="$METRICS_DIR" \
  RUNTIME_BIND="0.0.0.0:$RUNTIME_PORT" \
  "$ROOT/.venv/bin/gunicorn" runtime.wsgi --config python:runtime.gunicorn_runtime
start worker "$ROOT/.venv/bin/celery" -A contractor_site worker -l info --concurrency 2
start beat "$ROOT/.venv/bin/celery" -A contractor_site beat -l info --schedule "$RUN_DIR/celerybeat-schedule"

# Returns the pid of a child that is gone, if any.
first_dead() {
  local pid
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

# A child that exits: stop the rest, exit non-zero naming it.
child_exited() {
  local pid="$1" rc="${2:-}"
  if [ -z "$rc" ]; then
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
  fi
  trap - INT TERM
  say "$(name_of "$pid") exited (status $rc); stopping everything"
  cleanup
  say "stopped because $(name_of "$pid") exited"
  [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
}

http_ok() { # URL HOST
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 -H "Host: $2" "$1" 2>/dev/null
  else
    "$PY" - "$1" "$2" <<'PY' 2>/dev/null
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Host": sys.argv[2]})
with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 - our own local URL
    sys.exit(0 if resp.status < 400 else 1)
PY
  fi
}

# wait_healthy LABEL PORT: until http://127.0.0.1:PORT/healthz answers (Host localhost or acme.localhost).
wait_healthy() {
  local label="$1" port="$2" deadline=$((SECONDS + STARTUP_TIMEOUT)) dead
  while :; do
    if http_ok "http://127.0.0.1:$port/healthz" localhost || http_ok "http://127.0.0.1:$port/healthz" acme.localhost; then
      return 0
    fi
    if dead="$(first_dead)"; then
      child_exited "$dead"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "warning: $label did not answer /healthz on port $port within ${STARTUP_TIMEOUT}s (still running)"
      return 1
    fi
    sleep 0.5
  done
}

healthy=1
wait_healthy console "$WEB_PORT" || healthy=0
wait_healthy runtime "$RUNTIME_PORT" || healthy=0

banner="$(
  printf '\n'
  printf '=%.0s' {1..78}
  printf '\n'
  if [ "$healthy" -eq 1 ]; then
    printf ' CONTRACTOR is running\n'
  else
    printf ' CONTRACTOR started, but a /healthz check did not answer: see the warnings above\n'
  fi
  printf '   console    http://acme.localhost:%s/\n' "$WEB_PORT"
  printf '   admin      http://localhost:%s/admin/\n' "$WEB_PORT"
  printf '   API docs   http://acme.localhost:%s/api/docs/\n' "$WEB_PORT"
  printf '   runtime    http://acme.localhost:%s/healthz\n' "$RUNTIME_PORT"
  printf '   dev model  http://127.0.0.1:%s/v1/models\n' "$DEVMODEL_PORT"
  printf '   database   %s\n' "$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')"
  printf '   redis      %s\n' "$(printf '%s' "$REDIS_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')"
  if [ -s "$SEED_LOG" ]; then
    printf ' Demo (from seed_demo, also in .run/seed_demo.log):\n'
    # without the migration lines of a first-time tenant schema and log records
    grep -v -E '^\[[0-9]+/[0-9]+ \([0-9]+%\) |^[[:space:]]*OK$|^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:,.]+ [A-Z]+ ' "$SEED_LOG" |
      sed 's/^/   /' || true
  fi
  printf ' Output below is prefixed [devmodel] [web] [runtime] [worker] [beat]. Ctrl-C stops everything.\n'
  printf '=%.0s' {1..78}
  printf '\n'
)"
printf '%s\n\n' "$banner"

# Supervise: the first child to exit stops everything.
rc=0
dead_pid=""
wait -n -p dead_pid "${PIDS[@]}" || rc=$?
if [ -n "$dead_pid" ]; then
  child_exited "$dead_pid" "$rc"
fi
# wait returned without a child (should not happen): treat as failure.
say "wait returned unexpectedly (status $rc); stopping everything"
exit 1
