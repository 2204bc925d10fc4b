#!/usr/bin/env bash
# Prepare this machine for CONTRACTOR: Python .venv + requirements, PostgreSQL, Redis.
#
#   bash scripts/setup.sh      check/prepare everything, print one line per step
#   . scripts/setup.sh         the same, then export DATABASE_URL, REDIS_URL and put .venv/bin on PATH
#                              in the current shell (run.sh and test.sh do this)
#
# Idempotent, and quick when everything is in place: requirements are installed only when
# requirements.txt / requirements-dev.txt changed (sha256 stamp in .venv/.requirements.sha256).
# Environment: DATABASE_URL, REDIS_URL (use these servers), PYTHON (interpreter to build .venv with).
# Services: see scripts/services.sh. Logs of installs and started servers: .run/

if [ -z "${BASH_VERSION:-}" ]; then
  echo "scripts/setup.sh needs bash" >&2
  # shellcheck disable=SC2317
  return 1 2>/dev/null || exit 1
fi

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # Sourced: do the work in a child bash (so `set -e` and failures cannot kill the caller's shell),
  # then import the environment it wrote.
  _contractor_setup_env="$(mktemp "${TMPDIR:-/tmp}/contractor-setup.XXXXXX")" || return 1
  if bash "${BASH_SOURCE[0]}" --env-file "$_contractor_setup_env"; then
    # shellcheck source=/dev/null
    . "$_contractor_setup_env"
    rm -f "$_contractor_setup_env"
    unset _contractor_setup_env
    return 0
  else
    _contractor_setup_rc=$?
    rm -f "$_contractor_setup_env"
    unset _contractor_setup_env
    return "$_contractor_setup_rc"
  fi
fi

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"

env_file=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --env-file)
      env_file="$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup.sh: unknown argument: $1" >&2
      exit 2
      ;;
  esac
done

cd "$ROOT"
mkdir -p "$ROOT/.run"

# One setup at a time on this checkout (concurrent pip installs or server starts would trip each other).
if command -v flock >/dev/null 2>&1; then
  exec {setup_lock_fd}>"$ROOT/.run/setup.lock"
  if ! flock -w 900 "$setup_lock_fd"; then
    echo "setup: another scripts/setup.sh holds .run/setup.lock for 15 minutes; giving up" >&2
    exit 1
  fi
fi

# shellcheck source=scripts/services.sh
. "$ROOT/scripts/services.sh"

# ---------------------------------------------------------------------------------------------------
# Python

py_ok() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' >/dev/null 2>&1; }

find_python() {
  local candidate path
  for candidate in "${PYTHON:-}" python3.11 python3 python3.12 python3.13; do
    [ -n "$candidate" ] || continue
    path="$(command -v "$candidate" 2>/dev/null)" || continue
    if py_ok "$path"; then
      printf '%s\n' "$path"
      return 0
    fi
  done
  return 1
}

venv_version() { sed -n 's/^version[_a-z]* *= *//p' "$VENV/pyvenv.cfg" 2>/dev/null | head -n 1; }

create_venv() {
  local py
  if ! py="$(find_python)"; then
    if _svc_can_apt; then
      echo "python: no python3 >= 3.11 found; installing Debian's python3 (log: .run/apt.log) ..."
      _svc_apt_install --no-install-recommends python3 python3-venv || true
    fi
    if ! py="$(find_python)"; then
      echo "python: no Python >= 3.11 found (tried \$PYTHON, python3.11, python3, python3.12, python3.13)." >&2
      echo "  Install it (Debian 12: apt-get install -y python3 python3-venv) or set PYTHON=/path/to/python3.11" >&2
      return 1
    fi
  fi
  if ! "$py" -m venv "$VENV" >"$CONTRACTOR_RUN_DIR/venv.log" 2>&1 || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    # Debian ships venv/ensurepip separately.
    if _svc_can_apt && _svc_apt_install --no-install-recommends python3-venv "python$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv" &&
      "$py" -m venv "$VENV" >"$CONTRACTOR_RUN_DIR/venv.log" 2>&1; then
      :
    else
      rm -rf "$VENV"
      echo "python: '$py -m venv .venv' failed (log: .run/venv.log). On Debian: apt-get install -y python3-venv" >&2
      _svc_log_tail "$CONTRACTOR_RUN_DIR/venv.log" 5
      return 1
    fi
  fi
  echo "python: created .venv with $py ($(venv_version))"
}

setup_python() {
  local files=() want have names
  if [ -x "$VENV/bin/python" ] && py_ok "$VENV/bin/python"; then
    :
  else
    if [ -e "$VENV" ] || [ -L "$VENV" ]; then
      if [ ! -f "$VENV/pyvenv.cfg" ]; then
        echo "python: .venv exists but is not a virtualenv (no pyvenv.cfg); move it away and re-run" >&2
        return 1
      fi
      echo "python: .venv is broken or older than Python 3.11; recreating it"
      rm -rf "$VENV"
    fi
    create_venv || return 1
  fi

  [ -f requirements.txt ] && files+=(requirements.txt)
  [ -f requirements-dev.txt ] && files+=(requirements-dev.txt)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "python: .venv ready (Python $(venv_version)); no requirements.txt yet, nothing to install"
    return 0
  fi
  names="${files[*]}"
  want="$(sha256sum "${files[@]}" | sha256sum | cut -d ' ' -f 1)"
  have="$(cat "$STAMP" 2>/dev/null || true)"
  if [ "$want" = "$have" ]; then
    echo "python: .venv up to date (Python $(venv_version), ${names// / + } unchanged)"
    return 0
  fi
  echo "python: installing ${names// / + } into .venv ..."
  local req_args=() f
  for f in "${files[@]}"; do
    req_args+=(-r "$f")
  done
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q "${req_args[@]}"; then
    echo "python: pip install failed (see above); fix the requirements and re-run" >&2
    return 1
  fi
  printf '%s\n' "$want" >"$STAMP"
  echo "python: requirements installed"
}

# ---------------------------------------------------------------------------------------------------

setup_python
export CONTRACTOR_PYTHON="$VENV/bin/python"
ensure_postgres
ensure_redis

if [ -n "$env_file" ]; then
  new_path="$PATH"
  case ":$PATH:" in
    *":$VENV/bin:"*) ;;
    *) new_path="$VENV/bin:$PATH" ;;
  esac
  {
    printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
    printf 'export REDIS_URL=%q\n' "$REDIS_URL"
    printf 'export VIRTUAL_ENV=%q\n' "$VENV"
    printf 'export PATH=%q\n' "$new_path"
  } >"$env_file"
fi
