#!/usr/bin/env bash
# Benchmarks (figures for the notes; not part of CI): per function cold start,
# warm latency, CPU per warm invocation and peak RSS against a local Lambda
# Runtime API; webhook dispatcher throughput; analysis throughput; the cost
# model; arm64 release bootstrap sizes. Starts its own moto; needs nothing
# set up beforehand. Takes ~15 min on 2 cores (two release builds).
#   ./infra/bench.sh                 everything
#   SKIP_ARM64=1 ./infra/bench.sh    skip the arm64 release build (sizes)
#   BENCH_INVOCATIONS=500 ./infra/bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
"$INFRA_DIR/setup.sh"

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pulsara-bench.XXXXXX")"
remove_on_exit "$WORK_DIR"
export TMPDIR="$WORK_DIR"
MOTO_PORT="$(free_port)"
start_moto "$MOTO_PORT" "$WORK_DIR/moto.log"
AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 \
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  "$VENV/bin/python" "$INFRA_DIR/local_stack.py" --env-file "$WORK_DIR/env" \
    --param "AdminTokenSecret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
    --param WebhookAllowLoopbackHttp=true \
    --set PULSARA_STAGE=local \
    --set DEFAULT_RATE_LIMIT_PER_MINUTE=1000000 \
    --set LOGIN_LIMIT_PER_EMAIL_PER_MINUTE=10000 \
    --set LOGIN_LIMIT_PER_IP_PER_MINUTE=10000 >/dev/null
load_env_file "$WORK_DIR/env"

section "Release build (host) of every function"
cargo build --release --workspace --bins

section "Seed"
export BENCH_ADMIN_EMAIL=bench@pulsara.local BENCH_ADMIN_PASSWORD=bench-password-123
SEED="$(PULSARA_ADMIN_EMAIL=$BENCH_ADMIN_EMAIL PULSARA_ADMIN_PASSWORD=$BENCH_ADMIN_PASSWORD \
  target/release/pulsara-admin seed-demo)"
echo "$SEED"
BENCH_RESTAURANT_ID="$(sed -n 's/^demo restaurant: \(rst_[0-9a-f]*\).*/\1/p' <<<"$SEED")"
BENCH_API_KEY="$(sed -n 's/^demo api key: *\(psk_live_[A-Za-z0-9]*\).*/\1/p' <<<"$SEED")"
export BENCH_RESTAURANT_ID BENCH_API_KEY

section "Functions against a local Lambda Runtime API (moto over loopback)"
"$VENV/bin/python" "$INFRA_DIR/bench/run_all.py"

section "Handler CPU work apart from AWS calls (restaurant-config)"
cargo run -q --release -p pulsara-shared --example domain_bench

section "Hash path (admin password, legacy and new API keys)"
cargo run -q --release -p pulsara-shared --example hash_bench

section "Call analysis throughput"
cargo run -q --release -p pulsara-shared --example analysis_bench

if [[ -z "${SKIP_ARM64:-}" ]]; then
  section "arm64 release bootstraps (cargo lambda build --release --arm64)"
  cargo lambda build --release --arm64 --workspace
  for f in target/lambda/*/bootstrap; do
    awk -v n="$(basename "$(dirname "$f")")" -v s="$(stat -c %s "$f")" 'BEGIN { printf "%-28s %6.2f MB\n", n, s / 1e6 }'
  done
fi
