#!/usr/bin/env bash
# Local stack only: cargo's runner (CARGO_TARGET_<host>_RUNNER) for the function binaries that
# `cargo lambda watch` starts. cargo lambda watch never replaces an instance whose process died,
# so after --concurrency injected crashes a function would answer nothing for the rest of the
# run. Lambda starts a new execution environment instead, and so does this: when the binary dies
# of a signal (a fault point's crash or hang aborts: SIGABRT) it is started again, with the same
# environment, and takes the next invocation. Any other exit, or a signal to this script (watch
# stopping the instance), ends the instance as before.
# It also gives the function its own environment variables (the template's per-function
# Environment, written by infra/local_stack.py to $PULSARA_FUNCTION_ENV_DIR/<binary>.env): cargo
# lambda watch gives every function the same env file, Lambda gives each its own.
set -u
own_env="${PULSARA_FUNCTION_ENV_DIR:-}/$(basename "$1").env"
if [ -n "${PULSARA_FUNCTION_ENV_DIR:-}" ] && [ -f "$own_env" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] && export "${line?}"
  done <"$own_env"
fi
child=0
quick=0
trap 'kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 143' TERM INT HUP
while true; do
  started=$SECONDS
  "$@" &
  child=$!
  wait "$child"
  rc=$?
  if [ "$rc" -le 128 ] || [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
    exit "$rc"
  fi
  # Dying at once, again and again, is a broken binary, not an injected fault: give up.
  if [ $((SECONDS - started)) -lt 1 ]; then quick=$((quick + 1)); else quick=0; fi
  if [ "$quick" -ge 5 ]; then
    echo "[respawn] $(basename "$1") keeps dying at start (signal $((rc - 128))); giving up" >&2
    exit "$rc"
  fi
  echo "[respawn] $(basename "$1") died of signal $((rc - 128)); starting a new instance" >&2
done
