#!/usr/bin/env python3
"""Messaging: send-to-stream latency and messages per second with 50 devices, beside
`GET /health` in the same run.

Starts the binary on a fresh data directory (plain HTTP on loopback, rate limits raised
out of the way), makes 10 users with 5 devices each (50 devices) in one group chat, and
opens the Server-Sent Events stream of every device (50 connections). Then:

  health       `GET /health` on --health-connections keep-alive connections for
               --duration seconds: the reference requests per second.
  latency      --latency-messages messages sent one at a time by one device, each with
               an envelope for each of the 49 other devices: the time from sending the
               POST to the event's arrival on every other device's stream (p50, p99 over
               all 49 x N arrivals), and to the POST's answer.
  throughput   --senders devices send as fast as they can for --duration seconds while
               `GET /health` runs beside them as above: messages per second accepted,
               stream events per second delivered (49 per message), and /health requests
               per second under that load.

Every arrival is checked: each device receives each message exactly once, with its own
envelope. Clients are Python threads (stdlib HTTP), on the same cores as the server.

    bench/messaging.py [--duration 10] [--latency-messages 200] [--senders 4]
                       [--binary target/release/sealbox] [--no-build]
"""

import argparse
import base64
import http.client
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# bench/api.py's server start (config, setup token), by path.
_spec = importlib.util.spec_from_file_location("bench_api", os.path.join(ROOT, "bench", "api.py"))
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

USERS = 10
DEVICES_PER_USER = 5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each load phase")
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4, help="devices sending at once")
    parser.add_argument("--health-connections", type=int, default=4)
    # Where `cargo build --release` puts it: under $CARGO_TARGET_DIR when that is set.
    built = os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "sealbox") \
        if os.environ.get("CARGO_TARGET_DIR") else api.BINARY
    parser.add_argument("--binary", default=built, help="the sealbox binary to run")
    parser.add_argument("--no-build", action="store_true", help="use the existing binary")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    api.BINARY = args.binary

    with tempfile.TemporaryDirectory(prefix="sealbox-bench-messaging-") as work:
        server, url, setup_token = api.start_server(work)
        try:
            base = urllib.parse.urlparse(url)
            devices, chat = populate(base, setup_token)
            streams = [Stream(base, d) for d in devices]
            time.sleep(0.5)
            reference = health(base, args.duration, args.health_connections)
            latencies, answers = latency(base, devices, streams, chat, args.latency_messages)
            load = throughput(base, devices, streams, chat, args)
            for s in streams:
                s.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(reference, latencies, answers, load, args)


def request(base, method, path, token, device=None, body=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if device:
        headers["X-Device-Id"] = device
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    if response.status >= 300:
        sys.exit(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data) if data else None


def populate(base, setup_token):
    """10 users with 5 devices each in one group chat."""
    url = f"http://{base.hostname}:{base.port}"
    owner = api.post(f"{url}/v1/setup", {
        "token": setup_token, "email": "bench@example.com",
        "password": "bench-password-long-enough", "displayName": "Bench",
        "organizationName": "Bench"})
    org = owner["user"]["organizations"][0]["id"]
    tokens = [owner["accessToken"]]
    for n in range(1, USERS):
        invite = request(base, "POST", f"/v1/invites/{org}", tokens[0],
                         body={"email": f"user{n}@example.com", "role": "member"})
        pair = api.post(f"{url}/v1/auth/register", {
            "email": f"user{n}@example.com", "password": "bench-password-long-enough",
            "displayName": f"User {n}", "inviteToken": invite["token"]})
        tokens.append(pair["accessToken"])
    key = base64.b64encode(os.urandom(32)).decode()
    devices = []
    for n, token in enumerate(tokens):
        for d in range(DEVICES_PER_USER):
            created = request(base, "POST", "/v1/devices", token, body={
                "name": f"user {n} device {d}",
                "identityKey": {"alg": "ed25519", "publicKey": key},
                "signedPreKey": {"keyId": 1, "alg": "x25519", "publicKey": key,
                                 "signature": base64.b64encode(os.urandom(64)).decode()}})
            devices.append({"token": token, "id": created["id"], "user": created["userId"]})
    users = sorted({d["user"] for d in devices} - {devices[0]["user"]})
    chat = request(base, "POST", "/v1/chats", tokens[0], devices[0]["id"],
                   {"type": "group", "name": "bench", "memberIds": users})
    return devices, chat["id"]


class Stream:
    """One device's event stream, read by a thread; notes when each message arrived."""

    def __init__(self, base, device):
        self.device = device
        self.arrivals = {}
        self.duplicates = 0
        self.bad = 0
        self.lock = threading.Lock()
        self.conn = http.client.HTTPConnection(base.hostname, base.port, timeout=600)
        self.conn.request("GET", "/v1/stream", headers={
            "Authorization": f"Bearer {device['token']}", "X-Device-Id": device["id"]})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        kind = None
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                if line.startswith(b"event:"):
                    kind = line[6:].strip()
                elif line.startswith(b"data:") and kind == b"message.created":
                    at = time.perf_counter()
                    data = json.loads(line[5:])
                    message = data.get("message", {})
                    envelopes = message.get("envelopes", [])
                    with self.lock:
                        if data["messageId"] in self.arrivals:
                            self.duplicates += 1
                        self.arrivals[data["messageId"]] = at
                        if message.get("senderDeviceId") != self.device["id"] and (
                                len(envelopes) != 1 or envelopes[0]["deviceId"] != self.device["id"]):
                            self.bad += 1
        except (OSError, AttributeError, ValueError):
            # The connection closed under the reader (close() at the end of the run).
            return

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()


def message(chat, devices, sender):
    return {"chatId": chat, "contentType": "application/octet-stream",
            "ciphertext": base64.b64encode(os.urandom(256)).decode(),
            "envelopes": [{"deviceId": d["id"], "header": base64.b64encode(os.urandom(80)).decode()}
                          for d in devices if d["id"] != sender["id"]]}


def wait_arrivals(streams, sender, ids, timeout=60):
    deadline = time.time() + timeout
    others = [s for s in streams if s.device["id"] != sender["id"]]
    while time.time() < deadline:
        if all(all(i in s.arrivals for i in ids) for s in others):
            return others
        time.sleep(0.01)
    sys.exit("not every device received every message within a minute")


def latency(base, devices, streams, chat, count):
    sender = devices[0]
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    latencies, answers = [], []
    for _ in range(count):
        body = message(chat, devices, sender)
        started = time.perf_counter()
        sent = request(base, "POST", "/v1/messages", sender["token"], sender["id"], body, conn)
        answers.append(time.perf_counter() - started)
        others = wait_arrivals(streams, sender, [sent["id"]])
        latencies += [s.arrivals[sent["id"]] - started for s in others]
        time.sleep(0.005)
    conn.close()
    return sorted(latencies), sorted(answers)


def health(base, duration, connections, stop=None):
    """Requests per second of GET /health on keep-alive connections."""
    counts = [0] * connections
    end = time.time() + duration

    def run(n):
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        while time.time() < end and not (stop and stop.is_set()):
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            counts[n] += 1
        conn.close()

    started = time.time()
    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.time() - started)


def throughput(base, devices, streams, chat, args):
    # Senders of different users, so each send fans out to 49 devices.
    senders = [devices[n * DEVICES_PER_USER] for n in range(min(args.senders, USERS))]
    sent_ids = [[] for _ in senders]
    end = time.time() + args.duration

    def send(n):
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        sender = senders[n]
        while time.time() < end:
            sent = request(base, "POST", "/v1/messages", sender["token"], sender["id"],
                           message(chat, devices, sender), conn)
            sent_ids[n].append(sent["id"])
        conn.close()

    result = {}
    health_thread = threading.Thread(
        target=lambda: result.__setitem__("health", health(base, args.duration, args.health_connections)))
    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(senders))]
    started = time.time()
    health_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_at = time.time()
    for n, sender in enumerate(senders):
        wait_arrivals(streams, sender, sent_ids[n])
    delivered_at = time.time()
    health_thread.join()
    messages = sum(len(ids) for ids in sent_ids)
    deliveries = sum(
        1 for n, sender in enumerate(senders) for s in streams
        if s.device["id"] != sender["id"] for i in sent_ids[n] if i in s.arrivals)
    return {
        "messages": messages,
        "per_s": messages / (sent_at - started),
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / (delivered_at - started),
        "trail": delivered_at - sent_at,
        "health": result["health"],
        "duplicates": sum(s.duplicates for s in streams),
        "bad": sum(s.bad for s in streams),
    }


def report(reference, latencies, answers, load, args):
    def pct(values, p):
        return values[min(len(values) - 1, int(len(values) * p))] * 1000

    print(f"{os.cpu_count()} cores shared by sealbox and the Python clients; "
          f"{USERS * DEVICES_PER_USER} devices, each streaming (SSE)\n")
    print(f"GET /health alone ({args.health_connections} connections): {reference:.0f} req/s")
    print(f"send-to-stream latency ({len(answers)} messages x {USERS * DEVICES_PER_USER - 1} devices): "
          f"p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.1f} ms; the POST answered in p50 "
          f"{pct(answers, 0.5):.1f} ms, p99 {pct(answers, 0.99):.1f} ms")
    t = load
    print(f"throughput ({args.senders} senders, {args.duration} s): {t['messages']} messages, "
          f"{t['per_s']:.0f} messages/s, {t['deliveries']} stream deliveries "
          f"({t['deliveries_per_s']:.0f}/s); the last arrived {t['trail']:.2f} s after the load; "
          f"duplicates {t['duplicates']}, wrong envelopes {t['bad']}")
    print(f"GET /health beside the messaging load: {t['health']:.0f} req/s "
          f"({t['health'] / reference:.2f} of alone)")
    if t["duplicates"] or t["bad"]:
        sys.exit("a device received a message twice or with a wrong envelope")


if __name__ == "__main__":
    main()
