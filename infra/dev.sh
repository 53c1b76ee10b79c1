#!/usr/bin/env bash
# Run the whole API locally: moto (AWS side) + `cargo lambda watch` (functions), no AWS account
# and no Docker needed. Ctrl-C stops everything this script started.
# The functions reach moto through the AWS fault proxy (infra/fault_proxy.py, no faults armed),
# so the API meets DynamoDB's limits (key and item sizes) that moto alone skips.
#
#   MOTO_PORT               moto port (default 4566)
#   FAULT_PROXY_PORT        fault proxy port, the functions' AWS endpoint (default 4567)
#   API_PORT                local API port (default 5000)
#   FAKE_ELEVENLABS_PORT    the local fake of the ElevenLabs API (default 4570)
#   FAKE_ELEVENLABS_API_KEY the API key it accepts (default xi-local-dev-key-0123456789)
#   PULSARA_ADMIN_EMAIL     seeded admin user (default admin@pulsara.local)
#   PULSARA_ADMIN_PASSWORD  its password (default pulsara-local-admin)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

MOTO_PORT="${MOTO_PORT:-4566}"
FAULT_PROXY_PORT="${FAULT_PROXY_PORT:-4567}"
API_PORT="${API_PORT:-5000}"
FAKE_ELEVENLABS_PORT="${FAKE_ELEVENLABS_PORT:-4570}"
FAKE_ELEVENLABS_API_KEY="${FAKE_ELEVENLABS_API_KEY:-xi-local-dev-key-0123456789}"
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
ENV_FILE="$REPO_ROOT/.local/env"
export PULSARA_ADMIN_EMAIL="${PULSARA_ADMIN_EMAIL:-admin@pulsara.local}"
export PULSARA_ADMIN_PASSWORD="${PULSARA_ADMIN_PASSWORD:-pulsara-local-admin}"

section "Setup"
"$INFRA_DIR/setup.sh"
mkdir -p "$REPO_ROOT/.local"

section "Local AWS (moto on 127.0.0.1:$MOTO_PORT)"
start_moto "$MOTO_PORT" "$REPO_ROOT/.local/moto.log"
echo "moto running (log: .local/moto.log)"

section "AWS fault proxy (127.0.0.1:$FAULT_PROXY_PORT -> moto)"
start_fault_proxy "$FAULT_PROXY_PORT" "$MOTO_URL" "$REPO_ROOT/.local/fault_proxy.log"
echo "fault proxy running (log: .local/fault_proxy.log)"

section "Fake ElevenLabs API (127.0.0.1:$FAKE_ELEVENLABS_PORT; Twilio calls are handed to agents through it)"
start_bg "$REPO_ROOT/.local/fake_elevenlabs.log" "$VENV/bin/python" "$INFRA_DIR/fake_elevenlabs.py" \
  --port "$FAKE_ELEVENLABS_PORT" --api-key "$FAKE_ELEVENLABS_API_KEY"
echo "fake ElevenLabs running (API key: $FAKE_ELEVENLABS_API_KEY)"

section "Tables, queues, SES domain identity and configuration set from template.yaml"
AWS_ENDPOINT_URL="$MOTO_URL" \
AWS_REGION="${AWS_REGION:-us-east-1}" \
AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" \
AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
  "$VENV/bin/python" "$INFRA_DIR/local_stack.py" \
    --env-file "$ENV_FILE" \
    --param WebhookAllowLoopbackHttp=true \
    --param SenderDomain=pulsara.example \
    --param SenderEmail=notifications@pulsara.example \
    --param "ElevenLabsApiBase=http://127.0.0.1:$FAKE_ELEVENLABS_PORT" \
    --set PULSARA_STAGE=local \
    --set "AWS_ENDPOINT_URL=http://127.0.0.1:$FAULT_PROXY_PORT"

section "Demo data"
load_env_file "$ENV_FILE"
export AWS_ENDPOINT_URL="$MOTO_URL"  # the admin CLI and the event sources: moto directly
cargo run -q -p pulsara-shared --bin pulsara-admin -- seed-demo

section "Pulsara IVR Integration API (local)"
cat <<EOF
  Base URL     http://localhost:$API_PORT/api
  Admin login  $PULSARA_ADMIN_EMAIL / $PULSARA_ADMIN_PASSWORD  (POST /api/ivr/auth/login)
  Env file     $ENV_FILE
  moto         http://127.0.0.1:$MOTO_PORT  (sent mail: /moto-api/data.json -> ses)
  Fault proxy  http://127.0.0.1:$FAULT_PROXY_PORT/__faults__/  (the functions' AWS endpoint)
  ElevenLabs   http://127.0.0.1:$FAKE_ELEVENLABS_PORT  (a fake; API key $FAKE_ELEVENLABS_API_KEY)
  Stop         Ctrl-C
EOF
echo

# Queues (and streams) have no event source locally: this poller is it.
start_bg "$REPO_ROOT/.local/event_sources.log" "$VENV/bin/python" "$INFRA_DIR/event_sources.py" \
  --lambda-api "http://127.0.0.1:$API_PORT"
echo "event sources: .local/event_sources.log"

# The runner gives each function its own variables (infra/respawn.sh), as Lambda does.
HOST_TRIPLE="$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')"
env "CARGO_TARGET_${HOST_TRIPLE}_RUNNER=$INFRA_DIR/respawn.sh" \
  cargo lambda watch --concurrency 2 -A 127.0.0.1 -P "$API_PORT" --env-file "$ENV_FILE"
