#!/usr/bin/env python3
"""A local stand-in for GitHub's OAuth apps and REST API, for sealbox's GitHub sign-in
tests (tests/it/sso.rs): the real one cannot be reached from the tests.

Speaks what sealbox uses, as GitHub documents it:
  GET  /login/oauth/authorize     approves at once: 302 to redirect_uri with code and state
  POST /login/oauth/access_token  form client_id, client_secret, code, redirect_uri,
                                  code_verifier (PKCE S256 checked); JSON with Accept:
                                  application/json; a bad code is 200 with "error", as GitHub does
  GET  /user, GET /user/emails    with "Authorization: Bearer <token>"
  POST /__test/emails             replaces the account's e-mail addresses (JSON list)

Usage: fake_github.py CONFIG_JSON, with {"client_id", "client_secret", "user": {...},
"emails": [...]}. Prints the port it listens on (127.0.0.1) as the first line.
Standard library only.
"""

import base64
import hashlib
import json
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

CONFIG = json.loads(sys.argv[1])
CODES = {}  # code -> (challenge, redirect_uri)
TOKENS = set()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in TOKENS

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/login/oauth/authorize":
            if query.get("client_id") != CONFIG["client_id"] or query.get("code_challenge_method") != "S256":
                return self.answer(400, {"error": "bad request"})
            code = secrets.token_hex(10)
            CODES[code] = (query["code_challenge"], query["redirect_uri"])
            target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
            return self.answer(302, None, [("Location", target)])
        if url.path == "/user":
            if not self.authorized():
                return self.answer(401, {"message": "Requires authentication"})
            return self.answer(200, CONFIG["user"])
        if url.path == "/user/emails":
            if not self.authorized():
                return self.answer(401, {"message": "Requires authentication"})
            return self.answer(200, CONFIG["emails"])
        return self.answer(404, {"message": "Not Found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        url = urlparse(self.path)
        if url.path == "/__test/emails":
            CONFIG["emails"] = json.loads(body)
            return self.answer(204, None)
        if url.path != "/login/oauth/access_token":
            return self.answer(404, {"message": "Not Found"})
        form = {k: v[0] for k, v in parse_qs(body).items()}
        if form.get("client_id") != CONFIG["client_id"] or form.get("client_secret") != CONFIG["client_secret"]:
            return self.answer(200, {"error": "incorrect_client_credentials"})
        found = CODES.pop(form.get("code", ""), None)
        if found is None or found[1] != form.get("redirect_uri"):
            return self.answer(200, {"error": "bad_verification_code"})
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != found[0]:
            return self.answer(200, {"error": "bad_verification_code"})
        token = "gho_" + secrets.token_hex(16)
        TOKENS.add(token)
        return self.answer(200, {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
