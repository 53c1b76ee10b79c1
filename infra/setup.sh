#!/usr/bin/env bash
# Idempotent set-up of the local tooling; fast when everything is already in place.
#   - .venv (python3 -m venv) with the pinned packages of infra/requirements.txt
#     and infra/requirements-nodeps.txt (skipped when .venv/.requirements.sha256 matches them)
#   - the aarch64-unknown-linux-gnu Rust target (for `sam build` / arm64 release builds)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
REQS="$REPO_ROOT/infra/requirements.txt"
STAMP="$VENV/.requirements.sha256"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  python3 -m venv "$VENV"
fi

NODEPS="$REPO_ROOT/infra/requirements-nodeps.txt"
want="$(cat "$REQS" "$NODEPS" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
  echo "setup: installing Python tooling from infra/requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$NODEPS"
  echo "$want" >"$STAMP"
fi

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "setup: adding Rust target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
  fi
else
  echo "setup: warning: rustup not found; install Rust (https://rustup.rs) to build the functions" >&2
fi
