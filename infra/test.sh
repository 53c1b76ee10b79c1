#!/usr/bin/env bash
# Full local test run, needing nothing set up beforehand:
#   set-up -> moto on a free port -> the AWS fault proxy in front of it (the functions' endpoint)
#   -> tables/queues/SES from template.yaml -> cargo test -> cargo lambda watch on a free port
#   -> event sources -> pytest infra/tests (end-to-end over HTTP).
# Timeouts are scaled down (infra/FAULTS.md): function timeouts x0.2 in the event sources,
# queue visibility timeouts x0.2, claim lease 8 s, so 30 s < 45 s < 60 s becomes 6 s < 8 s < 12 s.
# While developing: SKIP_CARGO_TEST=1 skips `cargo test` (CARGO_TEST_ARGS, e.g. "-p restaurants",
# narrows it); PYTEST_ARGS selects the e2e tests.
# Then infra/iam_check.py checks the AWS calls the functions made against their policies.
# Exits non-zero on the first failure; always stops moto, the proxy, watch and the event sources.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

section "Setup"
"$INFRA_DIR/setup.sh"

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pulsara-test.XXXXXX")"
remove_on_exit "$WORK_DIR"
# Keep the service logs of the last run for diagnosis (target/ is ignored by git).
LOG_DIR="$REPO_ROOT/target/test-logs"
keep_logs() {
  mkdir -p "$LOG_DIR" && cp "$WORK_DIR"/*.log "$LOG_DIR"/ 2>/dev/null || true
  cp "$WORK_DIR/faults/fired.log" "$LOG_DIR/fired.log" 2>/dev/null || true
}
trap 'keep_logs' ERR
ENV_FILE="$WORK_DIR/env"
MOTO_PORT="$(free_port)"
PROXY_PORT="$(free_port)"
while [[ "$PROXY_PORT" == "$MOTO_PORT" ]]; do PROXY_PORT="$(free_port)"; done
API_PORT="$(free_port)"
while [[ "$API_PORT" == "$MOTO_PORT" || "$API_PORT" == "$PROXY_PORT" ]]; do API_PORT="$(free_port)"; done
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
FAULT_PROXY_URL="http://127.0.0.1:$PROXY_PORT"
# Fault points (infra/FAULTS.md): the tests arm them with files here; the functions read it.
FAULT_DIR="$WORK_DIR/faults"
mkdir -p "$FAULT_DIR"

section "Local AWS (moto on 127.0.0.1:$MOTO_PORT)"
start_moto "$MOTO_PORT" "$WORK_DIR/moto.log"
echo "moto running"

section "AWS fault proxy (127.0.0.1:$PROXY_PORT -> moto; the functions' AWS endpoint)"
start_fault_proxy "$PROXY_PORT" "$MOTO_URL" "$WORK_DIR/fault_proxy.log"
echo "fault proxy running"

section "Fake ElevenLabs API (register-call for the Twilio hand-over; infra/fake_elevenlabs.py)"
FAKE_ELEVENLABS_PORT="$(free_port)"
FAKE_ELEVENLABS_URL="http://127.0.0.1:$FAKE_ELEVENLABS_PORT"
FAKE_ELEVENLABS_API_KEY="xi-local-dev-key-0123456789"  # the one the README uses, as dev.sh
start_bg "$WORK_DIR/fake_elevenlabs.log" "$VENV/bin/python" "$INFRA_DIR/fake_elevenlabs.py" \
  --port "$FAKE_ELEVENLABS_PORT" --api-key "$FAKE_ELEVENLABS_API_KEY"
if ! wait_http "$FAKE_ELEVENLABS_URL/__fake__/requests" 30 "$BG_PID"; then
  tail -n 30 "$WORK_DIR/fake_elevenlabs.log" >&2 || true
  exit 1
fi
echo "fake ElevenLabs running"

section "Tables, queues, SES domain identity and configuration set from template.yaml"
# The functions reach AWS through the fault proxy (AWS_ENDPOINT_URL in the env file);
# local_stack.py, the event sources and the tests talk to moto directly.
AWS_ENDPOINT_URL="$MOTO_URL" \
AWS_REGION="${AWS_REGION:-us-east-1}" \
AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" \
AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
  "$VENV/bin/python" "$INFRA_DIR/local_stack.py" \
    --env-file "$ENV_FILE" \
    --queue-visibility-scale 0.2 \
    --param EmailRetryBaseSeconds=1 \
    --param EmailMaxAttempts=8 \
    --param WebhookRetrySchedule=1,2,3 \
    --param WebhookDisableAfterSeconds=5 \
    --param WebhookAllowLoopbackHttp=true \
    --param SenderDomain=pulsara.example \
    --param SenderEmail=notifications@pulsara.example \
    --param "ElevenLabsApiBase=$FAKE_ELEVENLABS_URL" \
    --param TranscriptWaitSeconds=4 \
    --set PULSARA_STAGE=local \
    --set API_KEY_CACHE_SECONDS=1 \
    --set WEBHOOK_TIMEOUT_MS=2000 \
    --set ADMIN_TOKEN_TTL_SECONDS=3600 \
    --set CLAIM_LEASE_SECONDS=8 \
    --set "PULSARA_FAULT_DIR=$FAULT_DIR" \
    --set "AWS_ENDPOINT_URL=$FAULT_PROXY_URL"
load_env_file "$ENV_FILE"
export AWS_ENDPOINT_URL="$MOTO_URL"  # this shell and what it starts (but the functions): moto
sed 's/^\(AWS_SECRET_ACCESS_KEY\)=.*/\1=***/' "$ENV_FILE"
# What only some functions get (the admin token secret's ARN: only the admin functions).
for f in "$PULSARA_FUNCTION_ENV_DIR"/*.env; do echo "$(basename "$f" .env): $(tr '\n' ' ' <"$f")"; done

if [[ -z "${SKIP_CARGO_TEST:-}" ]]; then
  section "cargo test --workspace"
  # The handler tests of admin functions read the token secret as those functions do.
  ADMIN_TOKEN_SECRET_ARN="$(sed -n 's/^ADMIN_TOKEN_SECRET_ARN=//p' "$PULSARA_FUNCTION_ENV_DIR/auth-login.env")" \
    cargo test ${CARGO_TEST_ARGS:---workspace}
fi

section "Build functions for cargo lambda watch"
cargo build --workspace --bins

section "cargo lambda watch (127.0.0.1:$API_PORT)"
WATCH_LOG="$WORK_DIR/watch.log"
# Several instances per function, so concurrent requests really race.
# A function instance whose process an injected crash kills is started again (infra/respawn.sh),
# as Lambda starts a new execution environment; cargo lambda watch alone would lose it for good.
HOST_TRIPLE="$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')"
start_bg "$WATCH_LOG" env "CARGO_TARGET_${HOST_TRIPLE}_RUNNER=$INFRA_DIR/respawn.sh" cargo lambda watch --ignore-changes --concurrency 4 -A 127.0.0.1 -P "$API_PORT" --env-file "$ENV_FILE"
WATCH_PGID="$BG_PID"
# Probe a route the watch server answers itself (405 on GET) so no function gets spawned.
if ! wait_http "http://127.0.0.1:$API_PORT/.rt/2020-08-15/logs" 120 "$WATCH_PGID"; then
  echo "cargo lambda watch log:" >&2
  tail -n 50 "$WATCH_LOG" >&2 || true
  exit 1
fi
echo "watch running"

section "Local event sources (SQS queues and DynamoDB streams -> functions, as Lambda's event source mappings)"
EVENTS_LOG="$WORK_DIR/event_sources.log"
# Function timeouts x0.2 (as the queues' visibility timeouts); stream batches retried 3 times.
start_bg "$EVENTS_LOG" env EVENT_SOURCE_TIME_SCALE=0.2 EVENT_SOURCE_STREAM_MAX_RETRIES=3 \
  "$VENV/bin/python" "$INFRA_DIR/event_sources.py" --lambda-api "http://127.0.0.1:$API_PORT"
echo "event sources running"

section "End-to-end tests (pytest infra/tests)"
export PULSARA_API="http://127.0.0.1:$API_PORT/api"
export MOTO_URL FAULT_PROXY_URL FAKE_ELEVENLABS_URL FAKE_ELEVENLABS_API_KEY
export PULSARA_ENV_FILE="$ENV_FILE"  # the stack's .local/env (test_readme.py sources it)
export PULSARA_FAULT_DIR="$FAULT_DIR"
export WATCH_LOG  # the security tests check what the functions logged
# PYTEST_ARGS narrows the run while developing, e.g. PYTEST_ARGS=infra/tests/test_calls.py
# shellcheck disable=SC2086
if ! "$VENV/bin/pytest" -q ${PYTEST_ARGS:-infra/tests}; then
  echo
  echo "cargo lambda watch log (last 80 lines):" >&2
  tail -n 80 "$WATCH_LOG" >&2 || true
  echo "event sources log (last 30 lines):" >&2
  tail -n 30 "$EVENTS_LOG" >&2 || true
  echo "fault proxy log (last 20 lines):" >&2
  tail -n 20 "$WORK_DIR/fault_proxy.log" >&2 || true
  keep_logs
  echo "full logs: $LOG_DIR" >&2
  exit 1
fi

section "Smoke test: infra/smoke.sh against the local stack, as against a deployed one"
SMOKE_ADMIN_EMAIL="smoke-$(date +%s)@pulsara.test"
SMOKE_ADMIN_PASSWORD="smoke-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(12))')"
export SMOKE_ADMIN_EMAIL SMOKE_ADMIN_PASSWORD
PULSARA_ADMIN_PASSWORD="$SMOKE_ADMIN_PASSWORD" \
  "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/pulsara-admin" create-admin --email "$SMOKE_ADMIN_EMAIL"
"$INFRA_DIR/smoke.sh" "$PULSARA_API"

section "IAM: every AWS call a function made is granted by its policy (infra/iam_check.py)"
# moto allows everything, so an AWS call missing from a policy fails only on AWS: the fault
# proxy saw every call, by function. After the whole suite, an unused grant fails too.
iam_strict=()
[[ -z "${PYTEST_ARGS:-}" ]] && iam_strict=(--strict)
"$VENV/bin/python" "$INFRA_DIR/iam_check.py" --proxy "$FAULT_PROXY_URL" --moto "$MOTO_URL" \
  --dump "$LOG_DIR/iam-calls.json" "${iam_strict[@]}"

section "All tests passed"
