# shellcheck shell=bash
# Helpers shared by infra/*.sh. Source it:  source "$(dirname "$0")/lib.sh"
#
#   REPO_ROOT, INFRA_DIR, VENV       paths; $VENV/bin is put first on PATH
#   section TITLE                    print a section header
#   free_port                        print a free TCP port on 127.0.0.1
#   wait_http URL [SECONDS] [PGID]   wait until URL answers any HTTP status (default 60 s);
#                                    fails early if process group PGID has died
#   start_bg LOGFILE CMD...          run CMD in its own process group (killed on exit);
#                                    sets BG_PID
#   start_moto PORT [LOGFILE]        start moto_server (infra/moto_server.py: moto plus SES
#                                    configuration sets and tags on SendEmail) on
#                                    127.0.0.1:PORT and wait for it
#   start_fault_proxy PORT MOTO_URL [LOGFILE]
#                                    start infra/fault_proxy.py on 127.0.0.1:PORT in front of
#                                    MOTO_URL and wait for it (the functions' AWS endpoint)
#   load_env_file FILE               export KEY=VALUE lines of FILE into this shell
#   remove_on_exit PATH              delete PATH (recursively) when the script exits
#
# Sourcing installs an EXIT/INT/TERM trap that stops every process group started here.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA_DIR="$REPO_ROOT/infra"
VENV="$REPO_ROOT/.venv"
export PATH="$VENV/bin:$HOME/.cargo/bin:$PATH"
export SAM_CLI_TELEMETRY=0

_LIB_PGIDS=()
_LIB_PATHS=()

section() {
  printf '\n\033[1m==> %s\033[0m\n' "$*"
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

_lib_alive() { kill -0 -- "-$1" 2>/dev/null; }

wait_http() {
  local url="$1" timeout="${2:-60}" pgid="${3:-}" start=$SECONDS
  until curl -s -o /dev/null --max-time 2 "$url"; do
    if [[ -n "$pgid" ]] && ! _lib_alive "$pgid"; then
      echo "error: process for $url exited before it answered" >&2
      return 1
    fi
    if (( SECONDS - start >= timeout )); then
      echo "error: $url did not answer within ${timeout}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_bg() {
  local log="$1"; shift
  mkdir -p "$(dirname "$log")"
  # setsid: the command leads its own process group, so cleanup can kill it with its children
  # and a terminal's Ctrl-C does not hit it before our trap runs.
  setsid "$@" >"$log" 2>&1 </dev/null &
  BG_PID=$!
  _LIB_PGIDS+=("$BG_PID")
}

start_moto() {
  local port="$1" log="${2:-$REPO_ROOT/.local/moto-$1.log}"
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    echo "error: something already listens on 127.0.0.1:$port (set MOTO_PORT to use another port)" >&2
    return 1
  fi
  start_bg "$log" "$VENV/bin/python" "$INFRA_DIR/moto_server.py" -H 127.0.0.1 -p "$port"
  if ! wait_http "http://127.0.0.1:$port/moto-api/" 60 "$BG_PID"; then
    echo "moto log ($log):" >&2
    tail -n 30 "$log" >&2 || true
    return 1
  fi
}

start_fault_proxy() {
  local port="$1" upstream="$2" log="${3:-$REPO_ROOT/.local/fault_proxy-$1.log}"
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    echo "error: something already listens on 127.0.0.1:$port" >&2
    return 1
  fi
  start_bg "$log" "$VENV/bin/python" "$INFRA_DIR/fault_proxy.py" --upstream "$upstream" --port "$port"
  if ! wait_http "http://127.0.0.1:$port/__faults__/" 30 "$BG_PID"; then
    echo "fault proxy log ($log):" >&2
    tail -n 30 "$log" >&2 || true
    return 1
  fi
}

load_env_file() {
  local key value
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ -z "$line" || "$line" == \#* ]] && continue
    key="${line%%=*}"
    value="${line#*=}"
    export "$key=$value"
  done <"$1"
}

remove_on_exit() {
  _LIB_PATHS+=("$1")
}

_lib_cleanup() {
  local pgid i
  trap - EXIT INT TERM
  for pgid in "${_LIB_PGIDS[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null || true
  done
  for pgid in "${_LIB_PGIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do
      _lib_alive "$pgid" || break
      sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  _LIB_PGIDS=()
  local path
  for path in "${_LIB_PATHS[@]}"; do
    rm -rf -- "$path"
  done
  _LIB_PATHS=()
}

_lib_on_exit() {
  local rc=$?
  _lib_cleanup
  exit "$rc"
}

trap _lib_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
