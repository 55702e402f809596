#!/usr/bin/env python3
"""A webhook receiver for the integration tests: a real HTTP server on loopback that
verifies every delivery with the official Standard Webhooks library (PyPI
`standardwebhooks`) and remembers what it received.

    receiver.py [PORT]     prints "listening <port>" once it accepts connections (on PORT,
                           or on a free port)

What it answers depends on the path (the last segment names the endpoint, so several
webhooks can share one receiver):

    /ok/<name>                 200
    /fail/<n>/<name>           500 to the first <n> attempts of each webhook-id, then 200
    /gone/<name>               410
    /retry-after/<s>/<name>    503 with Retry-After: <s>
    /redirect/<name>           302 to /ok/<name> (a delivery must not follow it)
    /slow/<ms>/<name>          200 after <ms> milliseconds

Control routes, for the test:

    POST /_secrets   {"endpoint": "<name>", "secrets": {"<label>": "whsec_..."}}
                     the secrets each delivery to <name> is verified against, by label
    GET  /_received  every delivery so far, oldest first: endpoint, path, the headers
                     sealbox sends, body, the status answered, and per secret label
                     whether the Standard Webhooks signature verifies with it (the
                     library's `Webhook(secret).verify`) and whether the legacy
                     X-Sealbox-Signature does
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-sealbox-signature",
    "x-sealbox-event-id",
    "x-sealbox-event-type",
    "x-sealbox-test-delivery",
    "content-type",
    "user-agent",
)

lock = threading.Lock()
secrets = {}  # endpoint -> {label: secret}
received = []  # what arrived, in order
attempts = {}  # (endpoint, webhook-id) -> attempts so far


def legacy_verifies(secret, header, body):
    """X-Sealbox-Signature: t=<ts>,v1=<hex HMAC-SHA256(key, "<ts>.<body>")>[,v1=...]."""
    if not header:
        return False
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamp = next((v for k, v in parts if k == "t"), None)
    if timestamp is None:
        return False
    key = Webhook(secret)._whsecret
    expected = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/_received":
            with lock:
                payload = json.dumps(received).encode()
            return self.reply(200, payload, [("Content-Type", "application/json")])
        self.reply(404)

    def do_POST(self):
        body = self.body()
        if self.path == "/_secrets":
            request = json.loads(body)
            with lock:
                secrets[request["endpoint"]] = request["secrets"]
            return self.reply(204)
        parts = self.path.strip("/").split("/")
        endpoint = parts[-1]
        headers = {name: self.headers.get(name) for name in HEADERS if self.headers.get(name) is not None}
        with lock:
            known = dict(secrets.get(endpoint, {}))
            key = (endpoint, headers.get("webhook-id"))
            attempts[key] = attempts.get(key, 0) + 1
            attempt = attempts[key]
        verified, legacy = {}, {}
        for label, secret in known.items():
            try:
                Webhook(secret).verify(body, dict(self.headers.items()))
                verified[label] = True
            except WebhookVerificationError:
                verified[label] = False
            legacy[label] = legacy_verifies(secret, headers.get("x-sealbox-signature"), body)

        kind = parts[0]
        extra = []
        if kind == "ok":
            status = 200
        elif kind == "fail":
            status = 500 if attempt <= int(parts[1]) else 200
        elif kind == "gone":
            status = 410
        elif kind == "retry-after":
            status = 503
            extra.append(("Retry-After", parts[1]))
        elif kind == "redirect":
            status = 302
            extra.append(("Location", f"/ok/{endpoint}"))
        elif kind == "slow":
            time.sleep(int(parts[1]) / 1000)
            status = 200
        else:
            status = 404
        with lock:
            received.append({
                "endpoint": endpoint,
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8", "replace"),
                "answered": status,
                "attempt": attempt,
                "verified": verified,
                "legacyVerified": legacy,
                "receivedAt": time.time(),
            })
        self.reply(status, f"answered {status}".encode(), extra)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
