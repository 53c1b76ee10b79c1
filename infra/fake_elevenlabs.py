#!/usr/bin/env python3
"""A local fake of the one ElevenLabs API we call: `POST /v1/convai/twilio/register-call`,
which hands a Twilio call to an agent and answers the TwiML that connects it (the real API
returns a `<Connect><Stream>` to its conversation websocket). ElevenLabs itself cannot run
here, so this is the one fake of the stack; it answers as the API does:

  - `xi-api-key` must be one of --api-key (else 401 `{"detail": {...}}`);
  - the body must be JSON with string `agent_id`, `from_number`, `to_number` (else 422);
  - then 200, text/xml TwiML.

Test controls (no auth, loopback only):
  POST /__fake__/mode     {"delayMs": N, "status": S, "body": "..."}: answer slowly, or with
                          status S and that body instead (until reset)
  GET  /__fake__/requests every register-call request so far: path, headers (the API key
                          replaced by whether it was accepted), JSON body
  POST /__fake__/reset    forget requests and mode

    fake_elevenlabs.py --port 4570 --api-key xi-local-dev-key-0123456789
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGISTER = "/v1/convai/twilio/register-call"
MAX_BODY = 1024 * 1024


class State:
    def __init__(self, keys: set[str]):
        self.keys = keys
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.mode: dict = {}

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.mode = {}


def twiml(agent_id: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            f'<Stream url="wss://api.elevenlabs.io/v1/convai/conversation/twilio?agent_id={agent_id}"/>'
            "</Connect></Response>")


def handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def send(self, status: int, body: str, ctype: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> bytes:
            n = int(self.headers.get("content-length") or 0)
            return self.rfile.read(min(n, MAX_BODY))

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/__fake__/requests":
                with state.lock:
                    self.send(200, json.dumps(state.requests))
            else:
                self.send(404, json.dumps({"detail": "not found"}))

        def do_POST(self):  # noqa: N802 - http.server's name
            raw = self.body()
            if self.path == "/__fake__/reset":
                state.reset()
                return self.send(200, "{}")
            if self.path == "/__fake__/mode":
                with state.lock:
                    state.mode = json.loads(raw or b"{}")
                return self.send(200, "{}")
            if self.path != REGISTER:
                return self.send(404, json.dumps({"detail": "not found"}))
            key_ok = self.headers.get("xi-api-key") in state.keys
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "xi-api-key"}
            headers["xi-api-key-accepted"] = key_ok
            with state.lock:
                state.requests.append({"path": self.path, "headers": headers, "body": body})
                mode = dict(state.mode)
            if mode.get("delayMs"):
                time.sleep(mode["delayMs"] / 1000)
            if not key_ok:
                return self.send(401, json.dumps({"detail": {
                    "status": "invalid_api_key", "message": "Invalid API key"}}))
            missing = [f for f in ("agent_id", "from_number", "to_number")
                       if not isinstance((body or {}).get(f), str)]
            if missing:
                return self.send(422, json.dumps({"detail": [
                    {"loc": ["body", f], "msg": "Field required", "type": "missing"}
                    for f in missing]}))
            if "status" in mode:
                return self.send(int(mode["status"]), mode.get("body", ""), "text/plain")
            return self.send(200, twiml(body["agent_id"]), "text/xml")

        def log_message(self, *args):
            pass

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=4570)
    ap.add_argument("--api-key", action="append", default=[], help="an accepted xi-api-key")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(State(set(args.api_key))))
    print(f"fake ElevenLabs API on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
