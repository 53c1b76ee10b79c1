#!/usr/bin/env bash
# Benchmarks (figures for the notes; not part of CI): per function cold start,
# warm latency, CPU per warm invocation and peak RSS against a local Lambda
# Runtime API; webhook dispatcher throughput; analysis throughput; the cost
# model; arm64 release bootstrap sizes; the ring path at Lambda's CPU share.
# Starts its own moto; needs nothing set up beforehand. Takes ~15 min on 2 cores
# (two release builds).
#
# Ring path (infra/bench/ring.py): every ring-time function (restaurant-config, and
# platform-hooks' endpoints for ElevenLabs, Twilio, Vapi and Retell; the lists are RING_FUNCTIONS/RING_CASES there) beside two minimal baselines built with the
# same release profile (infra/bench/baseline: baseline-config = SHA-256 key check
# + 2 GetItems, baseline-getitem = one GetItem), at full CPU and with only the
# bootstrap process in a cgroup whose CPU quota is MemorySize/1769 of one CPU
# (Lambda's share; memory sizes read from template.yaml): 5 cold starts (median
# init, first invocation) and 200 warm invocations per case and share, then the
# ratios against the baselines flagged against the bounds (at the 128 MB share,
# init+first <= 1.5x and warm p50 <= 1.2x baseline-config), and auth-login's
# sign-in latency (< 300 ms) at full CPU and at its own share. Needs root
# (cgroup v1 cpu controller or cgroup v2 cpu.max); fails rather than run
# unthrottled. Tables go to $CARGO_TARGET_DIR/bench/ring.md (default target/).
#
#   ./infra/bench.sh                       everything
#   BENCH_ONLY=ring ./infra/bench.sh       quick: build only the ring path's release
#                                          binaries, run only the ring-path + login part
#   SKIP_ARM64=1 ./infra/bench.sh          skip the arm64 release build (sizes)
#   BENCH_INVOCATIONS=500 ./infra/bench.sh
#   BENCH_COLD_STARTS=5 BENCH_RING_WARM=200 BENCH_LOGIN_WARM=20  ring-path sample sizes
#   BENCH_CPU_PERIOD_US=100000             CFS period of the quota (default 20 ms)
#   BENCH_STRICT=1                         exit 1 when a ring-path bound is missed
set -euo pipefail
if [[ -n "${BENCH_ONLY:-}" && "$BENCH_ONLY" != ring ]]; then
  echo "error: BENCH_ONLY=$BENCH_ONLY (only \"ring\" is known)" >&2
  exit 2
fi
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
    --param WebhookAllowLoopbackHttp=true \
    --set PULSARA_STAGE=local \
    --set DEFAULT_RATE_LIMIT_PER_MINUTE=1000000 \
    --set LOGIN_LIMIT_PER_EMAIL_PER_MINUTE=10000 \
    --set LOGIN_LIMIT_PER_IP_PER_MINUTE=10000 >/dev/null
load_env_file "$WORK_DIR/env"
# The bench runs every function with one environment: the admin functions need the token
# secret's ARN (their own variable in the template); run_all.py signs tokens with its value.
export ADMIN_TOKEN_SECRET_ARN="$(sed -n 's/^ADMIN_TOKEN_SECRET_ARN=//p' "$PULSARA_FUNCTION_ENV_DIR/auth-login.env")"
# The platform hooks open integration secrets (and seed-demo seals them) with the secrets key.
export SECRETS_KMS_KEY_ARN="$(sed -n 's/^SECRETS_KMS_KEY_ARN=//p' "$PULSARA_FUNCTION_ENV_DIR/platform-hooks.env")"

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
RING_BINS="$("$VENV/bin/python" "$INFRA_DIR/bench/ring.py" --print-binaries)"
if [[ "${BENCH_ONLY:-}" == ring ]]; then
  section "Release build (host) of the ring path's binaries and the seeder"
  # shellcheck disable=SC2086 # one --bin per word
  cargo build --release $(printf -- '--bin %s ' $RING_BINS pulsara-admin)
else
  section "Release build (host) of every function"
  cargo build --release --workspace --bins
fi

section "Seed"
export BENCH_ADMIN_EMAIL=bench@pulsara.local BENCH_ADMIN_PASSWORD=bench-password-123
SEED="$(PULSARA_ADMIN_EMAIL=$BENCH_ADMIN_EMAIL PULSARA_ADMIN_PASSWORD=$BENCH_ADMIN_PASSWORD \
  "$TARGET_DIR/release/pulsara-admin" seed-demo)"
echo "$SEED"
BENCH_RESTAURANT_ID="$(sed -n 's/^demo restaurant: \(rst_[0-9a-f]*\).*/\1/p' <<<"$SEED")"
BENCH_API_KEY="$(sed -n 's/^demo api key: *\(psk_live_[A-Za-z0-9]*\).*/\1/p' <<<"$SEED")"
BENCH_EL_INTEGRATION="$(sed -n 's/^demo elevenlabs integration: \(int_[0-9a-f]*\) .*/\1/p' <<<"$SEED")"
BENCH_EL_SECRET="$(sed -n 's/^demo elevenlabs integration: .* secret \(.*\)$/\1/p' <<<"$SEED")"
BENCH_TW_INTEGRATION="$(sed -n 's/^demo twilio integration: \(int_[0-9a-f]*\) .*/\1/p' <<<"$SEED")"
BENCH_TW_TOKEN="$(sed -n 's/^demo twilio integration: .* secret \(.*\)$/\1/p' <<<"$SEED")"
BENCH_VAPI_INTEGRATION="$(sed -n 's/^demo vapi integration: \(int_[0-9a-f]*\) .*/\1/p' <<<"$SEED")"
BENCH_VAPI_SECRET="$(sed -n 's/^demo vapi integration: .* secret \(.*\)$/\1/p' <<<"$SEED")"
BENCH_RETELL_INTEGRATION="$(sed -n 's/^demo retell integration: \(int_[0-9a-f]*\) .*/\1/p' <<<"$SEED")"
BENCH_RETELL_KEY="$(sed -n 's/^demo retell integration: .* secret \(.*\)$/\1/p' <<<"$SEED")"
export BENCH_RESTAURANT_ID BENCH_API_KEY BENCH_EL_INTEGRATION BENCH_EL_SECRET BENCH_TW_INTEGRATION BENCH_TW_TOKEN
export BENCH_VAPI_INTEGRATION BENCH_VAPI_SECRET BENCH_RETELL_INTEGRATION BENCH_RETELL_KEY

ring_path() {
  section "Ring path at Lambda's CPU share (cgroup quota = MemorySize/1769 of a CPU)"
  "$VENV/bin/python" "$INFRA_DIR/bench/ring.py"
}
if [[ "${BENCH_ONLY:-}" == ring ]]; then
  ring_path
  exit 0
fi

section "Functions against a local Lambda Runtime API (moto over loopback)"
"$VENV/bin/python" "$INFRA_DIR/bench/run_all.py"

ring_path

section "Handler CPU work apart from AWS calls (restaurant-config)"
cargo run -q --release -p pulsara-shared --example domain_bench

section "Hash path (admin password, legacy and new API keys)"
cargo run -q --release -p pulsara-shared --example hash_bench

section "Call analysis throughput"
cargo run -q --release -p pulsara-shared --example analysis_bench

if [[ -z "${SKIP_ARM64:-}" ]]; then
  section "arm64 release bootstraps (cargo lambda build --release --arm64)"
  cargo lambda build --release --arm64 --workspace
  for f in "$TARGET_DIR"/lambda/*/bootstrap; do
    awk -v n="$(basename "$(dirname "$f")")" -v s="$(stat -c %s "$f")" 'BEGIN { printf "%-28s %6.2f MB\n", n, s / 1e6 }'
  done
fi
