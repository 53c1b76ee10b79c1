#!/usr/bin/env bash
# Smoke test of a running stack, local or deployed: the README's flow end to end.
#
#   SMOKE_ADMIN_EMAIL=ops@example.com SMOKE_ADMIN_PASSWORD=... infra/smoke.sh BASE_URL
#
# BASE_URL is the API's root: the stack's ApiUrl output (https://….execute-api.<region>.amazonaws.com/v1)
# or http://localhost:5000/api locally. As the admin it signs in, mints an API key, creates a
# restaurant open around the clock on a fictional 555-01xx number, asks for its config by id and
# by phone number, hands over a call and completes it, finds it in the restaurant's call list and
# in full, then registers a webhook, sends it a test event and waits until it was delivered with a
# valid Standard Webhooks signature. Afterwards it deletes the webhook, revokes the key and
# switches the restaurant's AI off (restaurants are never deleted).
#
# The webhook receiver: SMOKE_WEBHOOK_URL (an https endpoint you watch; the script then checks
# only that the delivery succeeded), else one on 127.0.0.1 that checks the signature itself, which
# only a local stack (stage "local", WEBHOOK_ALLOW_LOOPBACK_HTTP) may call.
# Needs curl and python3 (standard library only). Exits non-zero at the first failed step.
set -euo pipefail

BASE="${1:?usage: infra/smoke.sh BASE_URL   (e.g. http://localhost:5000/api)}"
BASE="${BASE%/}"
: "${SMOKE_ADMIN_EMAIL:?set SMOKE_ADMIN_EMAIL (an admin made with pulsara-admin create-admin)}"
: "${SMOKE_ADMIN_PASSWORD:?set SMOKE_ADMIN_PASSWORD}"
WAIT_SECONDS="${SMOKE_WAIT_SECONDS:-120}"

step() { printf '\033[1msmoke:\033[0m %s\n' "$*"; }
fail() { printf 'smoke: FAILED: %s\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pulsara-smoke.XXXXXX")"
RECEIVER_PID=""
KEY_ID="" WH="" RID="" TOKEN="" KEY=""
cleanup() {
  local rc=$?
  [[ -n "$RECEIVER_PID" ]] && kill "$RECEIVER_PID" 2>/dev/null || true
  if [[ -n "$WH" && -n "$KEY" ]]; then
    api DELETE "/ivr/webhooks/$WH" "$KEY" >/dev/null 2>&1 || true
  fi
  if [[ -n "$RID" && -n "$TOKEN" ]]; then
    api PATCH "/ivr/restaurants/$RID" "$TOKEN" '{"aiEnabled": false}' >/dev/null 2>&1 || true
  fi
  if [[ -n "$KEY_ID" && -n "$TOKEN" ]]; then
    api DELETE "/ivr/auth/api-key/$KEY_ID" "$TOKEN" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# api METHOD PATH [BEARER] [JSON]: the response body; the status code goes to $WORK/status.
api() {
  local method="$1" path="$2" bearer="${3:-}" body="${4:-}"
  local args=(-sS -X "$method" -o "$WORK/body" -w '%{http_code}' --max-time 30)
  [[ -n "$bearer" ]] && args+=(-H "authorization: Bearer $bearer")
  [[ -n "$body" ]] && args+=(-H 'content-type: application/json' --data-binary "$body")
  curl "${args[@]}" "$BASE$path" >"$WORK/status"
  cat "$WORK/body"
}

# expect STATUS WHAT: the last response had this status and a success envelope.
expect() {
  local got
  got="$(cat "$WORK/status")"
  [[ "$got" == "$1" ]] || fail "$2: HTTP $got, expected $1: $(head -c 300 "$WORK/body")"
}

# field JSON_PATH: a field of the last response's data (a.b.0.c), printed.
field() {
  python3 - "$1" "$WORK/body" <<'EOF'
import json, sys
value = json.load(open(sys.argv[2]))["data"]
for part in sys.argv[1].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value if not isinstance(value, (dict, list)) else json.dumps(value))
EOF
}

step "sign in at $BASE"
TOKEN_JSON="$(python3 -c 'import json, os; print(json.dumps({"email": os.environ["SMOKE_ADMIN_EMAIL"], "password": os.environ["SMOKE_ADMIN_PASSWORD"]}))')"
api POST /ivr/auth/login "" "$TOKEN_JSON" >/dev/null
expect 200 "sign-in"
TOKEN="$(field accessToken)"

step "mint an API key"
api POST /ivr/auth/api-key "$TOKEN" '{"name": "smoke test", "description": "infra/smoke.sh; revoked when it ends"}' >/dev/null
expect 201 "create API key"
KEY="$(field apiKey)"
KEY_ID="$(field keyId)"

step "create a restaurant open around the clock"
for _ in 1 2 3 4 5; do
  # 555-0100..0199 are reserved for fiction in every North American area code.
  AREA=$(( RANDOM % 800 + 200 )) LINE=$(( RANDOM % 99 ))
  PHONE="$(printf '+1%d55501%02d' "$AREA" "$LINE")"
  FORWARD="$(printf '+1%d55501%02d' "$AREA" $(( LINE + 1 )))"  # the manager's line
  api POST /ivr/restaurants "$TOKEN" '{
    "name": "Pulsara smoke test",
    "phoneNumbers": ["'"$PHONE"'"],
    "timezone": "UTC",
    "aiEnabled": true,
    "callHoursStart": "00:00",
    "callHoursEnd": "24:00",
    "agent": {"elevenlabs_agent_id": "agent_smoke", "voice_id": "smoke", "tools": ["end_call"]},
    "forwarding_number": "'"$FORWARD"'",
    "notificationEmails": ["'"${SMOKE_NOTIFY_EMAIL:-$SMOKE_ADMIN_EMAIL}"'"]
  }' >/dev/null
  [[ "$(cat "$WORK/status")" == 409 ]] || break  # the number is taken: draw another
done
expect 201 "create restaurant"
RID="$(field restaurantId)"

step "config by id and by phone number"
api GET "/ivr/restaurant/$RID/config" "$KEY" >/dev/null
expect 200 "config by id"
[[ "$(field restaurantId)" == "$RID" ]] || fail "config by id: another restaurant"
[[ "$(field routing.action)" == ai_agent ]] || fail "config: routing $(field routing)"
api GET "/ivr/restaurant/${PHONE/+/%2B}/config" "$KEY" >/dev/null
expect 200 "config by phone number"
[[ "$(field restaurantId)" == "$RID" ]] || fail "config by phone: another restaurant"

step "hand over a call, then complete it"
VENDOR_CALL="smoke-$(date +%s)-$RANDOM"
api POST /ivr/call "$KEY" '{
  "restaurantId": "'"$RID"'",
  "callId": "'"$VENDOR_CALL"'",
  "timestamp": "'"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"'",
  "callerNumber": "anonymous",
  "transcript": "Agent: Thanks for calling!\nCustomer: Can I book a table for two tonight at 8?"
}' >/dev/null
expect 200 "process call"
CALL="$(field callId)"
[[ "$(field reason)" == Reservation ]] || fail "process call: reason $(field reason)"
api POST "/ivr/call/$CALL/complete" "$KEY" '{"duration": 42}' >/dev/null
expect 200 "complete call"
[[ "$(field status)" == completed ]] || fail "complete call: status $(field status)"

step "the call is listed and readable in full"
api GET "/ivr/restaurants/$RID/calls?limit=10" "$TOKEN" >/dev/null
expect 200 "list calls"
[[ "$(field calls.0.callId)" == "$CALL" ]] || fail "list calls: $CALL is not the newest"
api GET "/ivr/calls/$CALL" "$TOKEN" >/dev/null
expect 200 "get call"
[[ "$(field status)" == completed ]] || fail "get call: status $(field status)"

step "a webhook receives a signed test event"
if [[ -n "${SMOKE_WEBHOOK_URL:-}" ]]; then
  HOOK_URL="$SMOKE_WEBHOOK_URL"
else
  # A receiver that checks the Standard Webhooks signature (stdlib HMAC) and records what it got.
  python3 - "$WORK" <<'EOF' &
import base64, hashlib, hmac, http.server, json, os, sys, time
work = sys.argv[1]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        secret = open(os.path.join(work, "secret")).read().strip()
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
        want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        sigs = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split()]
        fresh = abs(time.time() - int(self.headers["webhook-timestamp"])) < 300
        ok = fresh and any(hmac.compare_digest(want, s) for s in sigs)
        with open(os.path.join(work, "received"), "a") as out:
            out.write(json.dumps({"ok": ok, "type": json.loads(body).get("type")}) + "\n")
        self.send_response(204 if ok else 401)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
open(os.path.join(work, "port.tmp"), "w").write(str(server.server_port))
os.rename(os.path.join(work, "port.tmp"), os.path.join(work, "port"))
server.serve_forever()
EOF
  RECEIVER_PID=$!
  for _ in $(seq 50); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
  [[ -s "$WORK/port" ]] || fail "local webhook receiver did not start"
  HOOK_URL="http://127.0.0.1:$(cat "$WORK/port")/hook"
fi
api POST /ivr/webhooks/register "$KEY" '{"callbackUrl": "'"$HOOK_URL"'", "events": ["settings.updated"]}' >/dev/null
expect 201 "register webhook"
WH="$(field webhookId)"
field secret >"$WORK/secret"
api POST "/ivr/webhooks/$WH/test" "$KEY" >/dev/null
expect 202 "send a test event"
DELIVERY="$(field deliveryId)"
delivered=""
for _ in $(seq "$(( WAIT_SECONDS / 2 ))"); do
  api GET "/ivr/webhooks/$WH/deliveries?limit=5" "$KEY" >/dev/null
  status="$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["data"]["deliveries"]; print(next((x["status"] for x in d if x["deliveryId"] == sys.argv[2]), ""))' "$WORK/body" "$DELIVERY")"
  if [[ "$status" == succeeded ]]; then delivered=1; break; fi
  [[ "$status" == failed ]] && fail "webhook delivery failed: $(head -c 300 "$WORK/body")"
  sleep 2
done
[[ -n "$delivered" ]] || fail "webhook delivery not delivered within ${WAIT_SECONDS}s"
if [[ -z "${SMOKE_WEBHOOK_URL:-}" ]]; then
  grep -q '"ok": true, "type": "webhook.test"' "$WORK/received" \
    || fail "the receiver got no correctly signed webhook.test event"
fi

step "passed: config, call, completion, listing and a signed webhook against $BASE"
