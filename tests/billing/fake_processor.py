"""A stand-in for the payment processors' create-checkout APIs, for tests/it/billing.rs.

It speaks the three documented requests sealbox makes and answers as each processor does:
  Stripe       POST /v1/checkout/sessions     (form-encoded)  -> {"id", "url"}
  Paystack     POST /transaction/initialize   (JSON)          -> {"status": true, "data": {"authorization_url", ...}}
  Flutterwave  POST /v3/payments              (JSON)          -> {"status": "success", "data": {"link"}}
Every request is recorded (path, headers, body) and served back at GET /_seen, so the test
asserts exactly what sealbox sent. `POST /_fail` makes the next create call answer 500.
After `POST /_hosted`, create calls answer the URL of a hosted page served here
(GET /hosted), whose "Pay" link goes back to the success URL sealbox sent, as a
processor's page does once the payer has paid: for browser tests.

Prints "listening <port>" on its first line of stdout.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from html import escape
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

SEEN = []
LOCK = threading.Lock()
FAIL_NEXT = [False]
HOSTED = [False]

STRIPE_URL = "https://checkout.stripe.test/c/pay/cs_test_a1b2c3"
PAYSTACK_URL = "https://checkout.paystack.test/0peioxfhpn"
FLUTTERWAVE_URL = "https://checkout.flutterwave.test/v3/hosted/pay/f524c1196ffda5556341"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_seen":
            with LOCK:
                return self.answer(200, SEEN)
        url = urlsplit(self.path)
        if url.path == "/hosted":
            back = parse_qs(url.query).get("return", [""])[0]
            page = (f"<!doctype html><title>Checkout stand-in</title><h1>Checkout stand-in</h1>"
                    f"<a id=\"pay\" href=\"{escape(back)}\">Pay</a>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            return self.wfile.write(page)
        self.answer(404, {"error": "not found"})

    def hosted(self, body, fallback):
        """The URL a create call answers: the local hosted page after POST /_hosted."""
        if not HOSTED[0]:
            return fallback
        back = body.get("success_url") or body.get("callback_url") or body.get("redirect_url") or ""
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/hosted?return={quote(back, safe='')}"

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if self.path == "/_fail":
            FAIL_NEXT[0] = True
            return self.answer(200, {})
        if self.path == "/_hosted":
            HOSTED[0] = True
            return self.answer(200, {})
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = dict(parse_qsl(raw, keep_blank_values=True))
        else:
            body = json.loads(raw) if raw else None
        with LOCK:
            SEEN.append({
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "contentType": content_type,
                "idempotencyKey": self.headers.get("Idempotency-Key"),
                "body": body,
            })
        if FAIL_NEXT[0]:
            FAIL_NEXT[0] = False
            return self.answer(500, {"error": {"message": "processor down"}})
        if self.path == "/v1/checkout/sessions":
            return self.answer(200, {"id": "cs_test_a1b2c3", "object": "checkout.session",
                                     "url": self.hosted(body, STRIPE_URL)})
        if self.path == "/transaction/initialize":
            return self.answer(200, {"status": True, "message": "Authorization URL created",
                                     "data": {"authorization_url": self.hosted(body, PAYSTACK_URL),
                                              "access_code": "0peioxfhpn",
                                              "reference": body.get("reference")}})
        if self.path == "/v3/payments":
            return self.answer(200, {"status": "success", "message": "Hosted Link",
                                     "data": {"link": self.hosted(body, FLUTTERWAVE_URL)}})
        self.answer(404, {"error": "not found"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
