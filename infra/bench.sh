#!/usr/bin/env bash
# Benchmarks for the note: arm64 release bootstrap sizes, restaurant-config cold
# start / warm timings / peak RSS against a local Lambda Runtime API, and the
# handler's own CPU work. Starts its own moto; needs nothing set up beforehand.
#   ./infra/bench.sh            all of it
#   SKIP_ARM64=1 ./infra/bench.sh   skip the (slow) arm64 release build
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
"$INFRA_DIR/setup.sh"

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pulsara-bench.XXXXXX")"
remove_on_exit "$WORK_DIR"
MOTO_PORT="$(free_port)"
start_moto "$MOTO_PORT" "$WORK_DIR/moto.log"
AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 \
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  "$VENV/bin/python" "$INFRA_DIR/local_stack.py" --env-file "$WORK_DIR/env" \
    --param "AdminTokenSecret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
    --set PULSARA_STAGE=local >/dev/null
load_env_file "$WORK_DIR/env"

section "Release build (host) of restaurant-config and the admin CLI"
cargo build --release -p restaurant-config -p pulsara-shared --bin restaurant-config --bin pulsara-admin

section "Seed"
SEED="$(PULSARA_ADMIN_EMAIL=bench@pulsara.local PULSARA_ADMIN_PASSWORD=bench-password-123 \
  target/release/pulsara-admin seed-demo)"
RID="$(sed -n 's/^demo restaurant: \(rst_[0-9a-f]*\).*/\1/p' <<<"$SEED")"
KEY="$(sed -n 's/^demo api key: *\(psk_live_[A-Za-z0-9]*\).*/\1/p' <<<"$SEED")"

section "restaurant-config by id (local Runtime API, moto over loopback)"
"$VENV/bin/python" "$INFRA_DIR/bench/runtime_bench.py" --binary target/release/restaurant-config \
  --event events/restaurant-config.json --invocations 300 \
  --path-param "restaurantId=$RID" --header "authorization=Bearer $KEY"

section "restaurant-config by phone number"
"$VENV/bin/python" "$INFRA_DIR/bench/runtime_bench.py" --binary target/release/restaurant-config \
  --event events/restaurant-config.json --invocations 300 \
  --path-param "restaurantId=(555) 010-0100" --header "authorization=Bearer $KEY"

section "Handler CPU work apart from AWS calls"
cargo run -q --release -p pulsara-shared --example domain_bench

if [[ -z "${SKIP_ARM64:-}" ]]; then
  section "arm64 release bootstraps (cargo lambda build --release --arm64)"
  cargo lambda build --release --arm64 --workspace
  for f in target/lambda/*/bootstrap; do
    awk -v n="$(basename "$(dirname "$f")")" -v s="$(stat -c %s "$f")" 'BEGIN { printf "%-28s %6.2f MB\n", n, s / 1e6 }'
  done
fi
