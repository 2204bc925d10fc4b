# shellcheck shell=bash
# Service checks for CONTRACTOR machines; sourced by scripts/setup.sh and scripts/test.sh.
#
#   ensure_postgres  use $DATABASE_URL, else 127.0.0.1:5432, else start/install a local cluster;
#                    make sure the URL's database exists; export DATABASE_URL.
#   ensure_redis     same for $REDIS_URL (default redis://127.0.0.1:6379/0); export REDIS_URL.
#   ensure_chromium  Debian chromium for the Playwright browser tests (unless CONTRACTOR_BROWSER_TESTS=0).
#
# The functions print one short line each, return non-zero with a message on stderr when they cannot
# do their job, and never `exit` (the caller decides). Logs of installs/starts go to .run/.
# Installing packages needs root and apt-get; nothing here uses sudo.

CONTRACTOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTRACTOR_RUN_DIR="$CONTRACTOR_ROOT/.run"

CONTRACTOR_DEFAULT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/contractor"
CONTRACTOR_DEFAULT_REDIS_URL="redis://127.0.0.1:6379/0"

# ---------------------------------------------------------------------------------------------------
# helpers

_svc_say() { printf '%s\n' "$*"; }
_svc_err() { printf '%s\n' "$*" >&2; }
_svc_have() { command -v "$1" >/dev/null 2>&1; }
_svc_is_root() { [ "$(id -u)" -eq 0 ]; }
_svc_can_apt() { _svc_is_root && _svc_have apt-get; }

_svc_python() {
  if [ -n "${CONTRACTOR_PYTHON:-}" ] && [ -x "$CONTRACTOR_PYTHON" ]; then
    printf '%s\n' "$CONTRACTOR_PYTHON"
  elif [ -x "$CONTRACTOR_ROOT/.venv/bin/python" ]; then
    printf '%s\n' "$CONTRACTOR_ROOT/.venv/bin/python"
  else
    command -v python3
  fi
}

_svc_rundir() { mkdir -p "$CONTRACTOR_RUN_DIR"; }

# _svc_log_tail FILE: last lines of a log, indented, on stderr.
_svc_log_tail() { [ -f "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/    /' >&2; return 0; }

# _svc_apt_install PKG...: apt-get install as root, `apt-get update` once per process. Log: .run/apt.log
_svc_apt_install() {
  _svc_rundir
  local log="$CONTRACTOR_RUN_DIR/apt.log"
  if [ -z "${_SVC_APT_UPDATED:-}" ]; then
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >>"$log" 2>&1; then
      _svc_err "apt-get update failed (log: $log):"
      _svc_log_tail "$log"
      return 1
    fi
    _SVC_APT_UPDATED=1
  fi
  if ! _svc_detached env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@" >>"$log" 2>&1; then
    _svc_err "apt-get install $* failed (log: $log):"
    _svc_log_tail "$log"
    return 1
  fi
}

# _svc_detached CMD...: run CMD with every file descriptor above 2 closed, so that a server it leaves
# running (redis-server --daemonize, pg_ctlcluster, a package's postinst) holds no lock or pipe of ours.
_svc_detached() {
  local py
  py="$(_svc_python 2>/dev/null)" || py=""
  if [ -z "$py" ]; then
    "$@"
    return
  fi
  "$py" -c 'import os, sys; os.closerange(3, 65536); os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# _svc_wait SECONDS CMD...: retry CMD until it succeeds or SECONDS pass.
_svc_wait() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

_svc_is_local_host() {
  case "$1" in
    '' | 127.* | localhost | ::1 | /*) return 0 ;;
    *) return 1 ;;
  esac
}

# _svc_url_info URL DEFAULT_PORT: prints 7 lines: scheme, host, port, user, password, path (decoded, no
# leading "/"), URL with password masked. For postgres URLs also an 8th: the same URL on database
# "postgres" (the maintenance database used to create the target one).
_svc_url_info() {
  "$(_svc_python)" - "$1" "$2" <<'PY'
import sys
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

url, default_port = sys.argv[1], int(sys.argv[2])
p = urlsplit(url)
host = p.hostname or parse_qs(p.query).get("host", [""])[0]
try:
    port = p.port or default_port
except ValueError:
    sys.exit(f"invalid port in {url!r}")
user, password = unquote(p.username or ""), unquote(p.password or "")
netloc = p.netloc
if p.password is not None:
    netloc = netloc.replace(":" + p.password + "@", ":***@", 1)
print(p.scheme, host, port, user, password, unquote(p.path.lstrip("/")), sep="\n")
print(urlunsplit(p._replace(netloc=netloc)))
if p.scheme.startswith("postgres"):
    print(urlunsplit(p._replace(path="/postgres")))
PY
}

# _svc_tcp_open HOST PORT: something listens there.
_svc_tcp_open() {
  "$(_svc_python)" - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
try:
    socket.create_connection((sys.argv[1] or "127.0.0.1", int(sys.argv[2])), timeout=3).close()
except OSError:
    sys.exit(1)
PY
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL

_PG_PSQL_OPTS=(-X -w -q -t -A -v ON_ERROR_STOP=1)

# _pg_ready URL: the server answers (auth and database are not checked).
_pg_ready() {
  if _svc_have pg_isready; then
    PGCONNECT_TIMEOUT=3 pg_isready -q -t 3 -d "$1" >/dev/null 2>&1
  else
    local info
    mapfile -t info < <(_svc_url_info "$1" 5432) || return 1
    case "${info[1]}" in
      /*) [ -S "${info[1]}/.s.PGSQL.${info[2]}" ] ;;
      *) _svc_tcp_open "${info[1]}" "${info[2]}" ;;
    esac
  fi
}

# _pg_py MODE URL [DBNAME]: psycopg (or psycopg2) fallback when psql is missing.
#   MODE connect: connect and SELECT 1.  MODE ensure_db: print "exists" or "created".
_pg_py() {
  "$(_svc_python)" - "$@" <<'PY'
import sys
mode, url = sys.argv[1], sys.argv[2]
try:
    import psycopg as driver
except ImportError:
    try:
        import psycopg2 as driver
    except ImportError:
        sys.exit("neither psql nor psycopg is available (apt-get install postgresql-client)")
try:
    conn = driver.connect(url, connect_timeout=5)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT 1")
    if mode == "ensure_db":
        name = sys.argv[3]
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone():
            print("exists")
        else:
            cur.execute('CREATE DATABASE "%s"' % name.replace('"', '""'))
            print("created")
    conn.close()
except Exception as exc:  # noqa: BLE001 - report any driver error
    sys.exit(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
PY
}

# _pg_connect MAINT_URL: can log in (prints the error on stderr otherwise).
_pg_connect() {
  if _svc_have psql; then
    local out
    if out="$(PGCONNECT_TIMEOUT=5 psql "${_PG_PSQL_OPTS[@]}" -d "$1" -c 'SELECT 1' 2>&1)"; then
      return 0
    fi
    printf '%s\n' "$out" | grep -v '^\s*$' | head -n 2 >&2
    return 1
  fi
  _pg_py connect "$1" >/dev/null
}

# _pg_ensure_db MAINT_URL DBNAME: prints "exists" or "created".
_pg_ensure_db() {
  local maint="$1" db="$2" found
  if ! _svc_have psql; then
    _pg_py ensure_db "$maint" "$db"
    return
  fi
  found="$(printf '%s\n' "SELECT 1 FROM pg_database WHERE datname = :'db';" |
    PGCONNECT_TIMEOUT=5 psql "${_PG_PSQL_OPTS[@]}" -d "$maint" -v db="$db")" || return 1
  if [ "$found" = 1 ]; then
    echo exists
    return 0
  fi
  printf '%s\n' 'CREATE DATABASE :"db";' |
    PGCONNECT_TIMEOUT=5 psql "${_PG_PSQL_OPTS[@]}" -d "$maint" -v db="$db" || return 1
  echo created
}

_pg_server_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

# _pg_start_local URL PORT: start a stopped local cluster listening on PORT (Debian's pg_ctlcluster, or
# the init script), creating one as root if the server is installed but has no cluster. Waits until ready.
_pg_start_local() {
  local url="$1" port="$2" log="$CONTRACTOR_RUN_DIR/postgres-start.log" tried=1 ver name cport status rest
  _svc_rundir
  : >"$log"
  if _svc_have pg_lsclusters; then
    local clusters
    clusters="$(pg_lsclusters --no-header 2>/dev/null || true)"
    if [ -z "$clusters" ] && _svc_is_root && _svc_have pg_createcluster && _pg_server_installed; then
      ver="$(basename "$(dirname "$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)")")")"
      _svc_detached pg_createcluster "$ver" main -p "$port" >>"$log" 2>&1 || true
      clusters="$(pg_lsclusters --no-header 2>/dev/null || true)"
    fi
    while read -r ver name cport status rest; do
      [ "$cport" = "$port" ] || continue
      case "$status" in
        online*) tried=0 ;;
        *) (cd / && _svc_detached pg_ctlcluster "$ver" "$name" start) >>"$log" 2>&1 && tried=0 ;;
      esac
    done <<<"$clusters"
  fi
  if ! _svc_have pg_lsclusters && _svc_is_root && [ -x /etc/init.d/postgresql ] && _svc_have service; then
    _svc_detached service postgresql start >>"$log" 2>&1 && tried=0
  fi
  [ "$tried" -eq 0 ] || return 1
  _svc_wait 30 _pg_ready "$url"
}

# _pg_trusts_loopback HOST PORT: the server lets any role in over TCP from this machine without a
# password, as on the project's machines (tests log in as roles they create). Probed with a role that
# does not exist: under trust the server answers "role ... does not exist", otherwise it asks for a
# password (or refuses the connection in pg_hba.conf).
_pg_trusts_loopback() {
  local out
  if _svc_have psql; then
    out="$(PGCONNECT_TIMEOUT=5 psql -X -w -d "host=$1 port=$2 user=contractor_trust_probe dbname=postgres" \
      -c 'SELECT 1' 2>&1)" && return 0
  else
    out="$("$(_svc_python)" - "$1" "$2" <<'PY' 2>&1
import sys
try:
    import psycopg
except ImportError:
    sys.exit("does not exist (psycopg missing: probe skipped)")
try:
    psycopg.connect(host=sys.argv[1], port=sys.argv[2], user="contractor_trust_probe", dbname="postgres",
                    connect_timeout=5).close()
except Exception as exc:  # noqa: BLE001
    sys.exit(str(exc))
PY
)" && return 0
  fi
  [[ "$out" == *"does not exist"* ]]
}

# _pg_trust_local PORT: as root, on a local Debian cluster, let every role connect over 127.0.0.1/::1
# without a password (what the project's machines have): prepends two lines to pg_hba.conf and reloads.
_pg_trust_local() {
  local port="$1" hba marker="# added by CONTRACTOR scripts/services.sh (trust on loopback)"
  _svc_is_root && _svc_have runuser && _svc_have psql || return 1
  hba="$(cd / && runuser -u postgres -- psql "${_PG_PSQL_OPTS[@]}" -p "$port" -c 'SHOW hba_file' 2>/dev/null)" || return 1
  [ -f "$hba" ] || return 1
  grep -qF "$marker" "$hba" && return 1
  {
    printf '%s: passwordless TCP from this machine, for development\n' "$marker"
    printf 'host    all    all    127.0.0.1/32    trust\n'
    printf 'host    all    all    ::1/128         trust\n'
    cat "$hba"
  } >"$hba.contractor-new" && cat "$hba.contractor-new" >"$hba" && rm -f "$hba.contractor-new" || return 1
  (cd / && runuser -u postgres -- psql "${_PG_PSQL_OPTS[@]}" -p "$port" -c 'SELECT pg_reload_conf()') >/dev/null || return 1
  sleep 0.3
  _svc_say "postgres: enabled trust on 127.0.0.1/::1 (all roles, as on the project's machines) in $hba"
}

_pg_help() {
  _svc_err "  Fix one of:"
  _svc_err "   - start PostgreSQL >= 14 here (Debian, as root: apt-get install -y postgresql && pg_ctlcluster <ver> main start),"
  _svc_err "     with trust for user postgres on 127.0.0.1, or run this script as root to have it done;"
  _svc_err "   - or point DATABASE_URL at a server you can use: DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/contractor"
}

ensure_postgres() {
  local url explicit=0 how info host port user password db masked maint hostport result err
  if [ -n "${DATABASE_URL:-}" ]; then
    url="$DATABASE_URL"
    explicit=1
  else
    url="$CONTRACTOR_DEFAULT_DATABASE_URL"
  fi
  mapfile -t info < <(_svc_url_info "$url" 5432)
  if [ "${#info[@]}" -lt 8 ] || [[ "${info[0]}" != postgres* ]]; then
    _svc_err "postgres: cannot parse DATABASE_URL (expected postgres://USER[:PASSWORD]@HOST:PORT/NAME)"
    return 1
  fi
  host="${info[1]}" port="${info[2]}" user="${info[3]}" password="${info[4]}" db="${info[5]}" masked="${info[6]}"
  maint="${info[7]}"
  hostport="${host:-local socket}:$port"
  if [ -z "$db" ]; then
    _svc_err "postgres: DATABASE_URL names no database: $masked"
    return 1
  fi

  if _pg_ready "$url"; then
    how="already running"
  elif ! _svc_is_local_host "$host"; then
    _svc_err "postgres: $masked does not answer (DATABASE_URL points at another machine; is it up and reachable?)"
    return 1
  elif _pg_start_local "$url" "$port"; then
    how="started the local cluster"
  elif [ "$explicit" -eq 0 ] && ! _pg_server_installed && _svc_can_apt; then
    _svc_say "postgres: not installed; installing Debian's postgresql (log: .run/apt.log) ..."
    if ! _svc_apt_install --no-install-recommends postgresql; then
      _svc_err "postgres: installing postgresql failed"
      return 1
    fi
    if ! _pg_ready "$url" && ! _pg_start_local "$url" "$port"; then
      _svc_err "postgres: installed, but no cluster answers on $hostport (log: .run/postgres-start.log)"
      _svc_log_tail "$CONTRACTOR_RUN_DIR/postgres-start.log"
      return 1
    fi
    how="installed and started"
  else
    if [ "$explicit" -eq 1 ]; then
      _svc_err "postgres: DATABASE_URL=$masked does not answer and no local cluster on port $port could be started"
    elif _svc_is_root; then
      _svc_err "postgres: nothing answers on $hostport and no local cluster could be started or installed"
    else
      _svc_err "postgres: nothing answers on $hostport; not root, so it can't be started or installed from here"
    fi
    [ -s "$CONTRACTOR_RUN_DIR/postgres-start.log" ] && _svc_log_tail "$CONTRACTOR_RUN_DIR/postgres-start.log" 5
    if _svc_have pg_lsclusters; then
      pg_lsclusters --no-header 2>/dev/null | while read -r ver name cport status rest; do
        if [ "$cport" = "$port" ] && [ "$status" = down ]; then
          _svc_err "  The local cluster $ver/$name (port $port) is down: start it as root or postgres with"
          _svc_err "  'pg_ctlcluster $ver $name start', or run this script as root."
        fi
      done
    fi
    _pg_help
    return 1
  fi

  # A local cluster with Debian's stock pg_hba.conf (peer/scram) refuses password-less logins over TCP;
  # the project's machines trust loopback. As root, make a local cluster do the same.
  local tcp_local=0
  case "$host" in 127.* | localhost | ::1) [ -z "$password" ] && tcp_local=1 ;; esac
  if ! err="$(_pg_connect "$maint" 2>&1)"; then
    if [ "$tcp_local" -eq 1 ] && _pg_trust_local "$port" && err="$(_pg_connect "$maint" 2>&1)"; then
      :
    else
      _svc_err "postgres: $hostport answers but connecting as ${user:-$(id -un)} fails: ${err:-unknown error}"
      _svc_err "  Give that role access (password in DATABASE_URL, or trust on 127.0.0.1 in pg_hba.conf, which"
      _svc_err "  this script adds as root for a local cluster), or set DATABASE_URL to a role that can log in."
      return 1
    fi
  fi
  if [ "$tcp_local" -eq 1 ] && ! _pg_trusts_loopback "$host" "$port" && ! _pg_trust_local "$port"; then
    _svc_say "postgres: note: $hostport does not trust every role on loopback (the project's machines do);" \
      "tests that log in as roles they create will fail (run this script as root to fix a local cluster)"
  fi

  if ! result="$(_pg_ensure_db "$maint" "$db" 2>&1)"; then
    _svc_err "postgres: could not check/create database \"$db\" on $hostport: $result"
    return 1
  fi
  if [ "$result" = created ]; then
    how="$how, created database $db"
  fi
  _svc_say "postgres: using $hostport/$db ($how)"
  export DATABASE_URL="$url"
}

# ---------------------------------------------------------------------------------------------------
# Redis

# _redis_ping URL: prints "up", "down" (nothing listens) or "error: MESSAGE" (something answered badly).
_redis_ping() {
  local url="$1" out
  # redis-cli -u does not percent-decode credentials: use it for plain URLs only.
  if [[ "$url" == redis://* && "$url" != *@* ]] && _svc_have redis-cli; then
    out="$(timeout 5 redis-cli --no-auth-warning -u "$url" ping 2>&1)" || true
    case "$out" in
      PONG) echo up ;;
      *"Could not connect"* | *"Connection refused"* | "") echo down ;;
      *) printf 'error: %s\n' "$(printf '%s' "$out" | head -n 1)" ;;
    esac
    return 0
  fi
  "$(_svc_python)" - "$url" <<'PY'
import socket, ssl, sys
from urllib.parse import unquote, urlsplit

url = sys.argv[1]
try:
    import redis  # the venv has it once requirements are installed
except ImportError:
    redis = None
if redis is not None:
    try:
        print("up" if redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping() else "error: no PONG")
    except redis.exceptions.ConnectionError as exc:
        print("down" if "refused" in str(exc).lower() or "connecting to" in str(exc).lower() else f"error: {exc}")
    except Exception as exc:  # noqa: BLE001
        print(f"error: {exc}")
    sys.exit(0)
p = urlsplit(url)
try:
    sock = socket.create_connection((p.hostname or "127.0.0.1", p.port or 6379), timeout=3)
except OSError:
    print("down")
    sys.exit(0)
try:
    if p.scheme == "rediss":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=p.hostname)
    if p.password:
        args = [unquote(p.username), unquote(p.password)] if p.username else [unquote(p.password)]
        cmd = "*%d\r\n$4\r\nAUTH\r\n" % (len(args) + 1) + "".join(
            "$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args
        )
        sock.sendall(cmd.encode())
        reply = sock.recv(256)
        if not reply.startswith(b"+OK"):
            print("error: " + reply.decode(errors="replace").strip())
            sys.exit(0)
    sock.sendall(b"*1\r\n$4\r\nPING\r\n")
    reply = sock.recv(256)
    print("up" if reply.startswith(b"+PONG") else "error: " + reply.decode(errors="replace").strip())
except OSError as exc:
    print(f"error: {exc}")
PY
}

_redis_up() { [ "$(_redis_ping "$1")" = up ]; }

# _redis_start URL PORT PASSWORD: a throwaway redis-server on 127.0.0.1:PORT (no persistence),
# pid/log in .run/.
_redis_start() {
  local url="$1" port="$2" password="$3" log args
  _svc_have redis-server || return 1
  _svc_rundir
  log="$CONTRACTOR_RUN_DIR/redis-$port.log"
  args=(--daemonize yes --port "$port" --save '' --appendonly no --dir "$CONTRACTOR_RUN_DIR"
    --pidfile "$CONTRACTOR_RUN_DIR/redis-$port.pid" --logfile "$log")
  if [ -n "$password" ]; then
    args+=(--requirepass "$password")
  fi
  _svc_detached redis-server "${args[@]}" --bind 127.0.0.1 -::1 >>"$log" 2>&1 ||
    _svc_detached redis-server "${args[@]}" --bind 127.0.0.1 >>"$log" 2>&1 ||
    return 1
  _svc_wait 10 _redis_up "$url"
}

_redis_help() {
  _svc_err "  Fix one of:"
  _svc_err "   - start Redis here (Debian, as root: apt-get install -y redis-server), or run this script as root;"
  _svc_err "   - or point REDIS_URL at a server you can use: REDIS_URL=redis://HOST:6379/0"
}

ensure_redis() {
  local url info host port password masked state how
  url="${REDIS_URL:-$CONTRACTOR_DEFAULT_REDIS_URL}"
  mapfile -t info < <(_svc_url_info "$url" 6379)
  if [ "${#info[@]}" -lt 7 ] || [[ "${info[0]}" != redis* ]]; then
    _svc_err "redis: cannot parse REDIS_URL (expected redis://[:PASSWORD@]HOST:PORT/DB)"
    return 1
  fi
  host="${info[1]:-127.0.0.1}" port="${info[2]}" password="${info[4]}" masked="${info[6]}"

  state="$(_redis_ping "$url")"
  case "$state" in
    up) how="already running" ;;
    error:*)
      _svc_err "redis: $masked answers but PING fails: ${state#error: }"
      _svc_err "  Check REDIS_URL (password, database number), or point it at another server."
      return 1
      ;;
    *)
      if ! _svc_is_local_host "$host"; then
        _svc_err "redis: $masked does not answer (REDIS_URL points at another machine; is it up and reachable?)"
        return 1
      elif _redis_start "$url" "$port" "$password"; then
        how="started redis-server, no persistence; log .run/redis-$port.log"
      elif ! _svc_have redis-server && _svc_can_apt; then
        _svc_say "redis: not installed; installing Debian's redis-server (log: .run/apt.log) ..."
        if ! _svc_apt_install --no-install-recommends redis-server; then
          _svc_err "redis: installing redis-server failed"
          return 1
        fi
        # The package's own service may already be up on 6379; otherwise start ours.
        if _svc_wait 3 _redis_up "$url"; then
          how="installed and started"
        elif _redis_start "$url" "$port" "$password"; then
          how="installed, started redis-server; log .run/redis-$port.log"
        else
          _svc_err "redis: installed, but could not start redis-server on port $port (log: .run/redis-$port.log)"
          _svc_log_tail "$CONTRACTOR_RUN_DIR/redis-$port.log" 5
          return 1
        fi
      else
        if _svc_have redis-server; then
          _svc_err "redis: nothing answers at $masked and redis-server failed to start (log: .run/redis-$port.log)"
          _svc_log_tail "$CONTRACTOR_RUN_DIR/redis-$port.log" 5
        elif _svc_is_root; then
          _svc_err "redis: nothing answers at $masked, redis-server is not installed and apt-get is not available"
        else
          _svc_err "redis: nothing answers at $masked and redis-server is not installed (installing it needs root)"
        fi
        _redis_help
        return 1
      fi
      ;;
  esac
  _svc_say "redis: using $host:$port ($how)"
  export REDIS_URL="$url"
}

# ---------------------------------------------------------------------------------------------------
# Chromium (browser tests)

ensure_chromium() {
  local bin
  if [ "${CONTRACTOR_BROWSER_TESTS:-1}" = 0 ]; then
    _svc_say "chromium: browser tests disabled (CONTRACTOR_BROWSER_TESTS=0)"
    return 0
  fi
  bin="$(command -v chromium 2>/dev/null || true)"
  if [ -z "$bin" ] && [ -x /usr/bin/chromium ]; then
    bin=/usr/bin/chromium
  fi
  if [ -n "$bin" ]; then
    _svc_say "chromium: $bin"
    return 0
  fi
  if _svc_can_apt; then
    _svc_say "chromium: installing Debian's chromium for browser tests (log: .run/apt.log; CONTRACTOR_BROWSER_TESTS=0 skips) ..."
    if _svc_apt_install chromium; then
      _svc_say "chromium: installed $(command -v chromium || echo /usr/bin/chromium)"
    else
      _svc_err "chromium: install failed; browser tests will skip themselves"
    fi
  else
    _svc_say "chromium: not installed; browser tests will skip (as root: apt-get install -y chromium)"
  fi
  return 0
}
