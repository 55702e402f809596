#!/usr/bin/env python3
"""Webhook deliveries per second to a local receiver, and event-to-receipt latency.

Starts the release binary on a fresh data directory (plain HTTP on loopback, loopback
allowed as a webhook target, rate limits raised out of the way) and, in a process of its
own, a minimal HTTP/1.1 receiver (asyncio, keep-alive, answers 200 at once and notes the
time each delivery arrived). Then:

  latency      --latency-events API calls that each emit one event (`POST /v1/api-keys`,
               `api_key.created`), one at a time with a pause between them, to one
               webhook: the time from sending the API call to the delivery's arrival
               (p50, p90, p99). It includes the API call itself, the outbox fan-out and
               the send.
  throughput   --webhooks webhooks subscribed to `*`, while `wrk` (Debian package `wrk`)
               renames an API key as fast as it can for --duration seconds (each rename
               emits `api_key.updated`, so each becomes --webhooks deliveries): the
               deliveries that arrived per second over the window from the first to the
               last arrival, beside the events per second the API produced, and how long
               the last delivery trailed the end of the load.

Every delivery counted is checked to carry the Standard Webhooks headers; the receiver
does not verify signatures (the tests do, with the official library), so it stays cheap.
The goal (issue 8): at least 500 deliveries a second sustained, p50 event-to-receipt
under 100 ms.

    bench/webhooks.py [--duration 10] [--webhooks 8] [--latency-events 200] [--no-build]
"""

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# bench/api.py's server start (config, setup token), by path.
_spec = importlib.util.spec_from_file_location("bench_api", os.path.join(ROOT, "bench", "api.py"))
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load")
    parser.add_argument("--webhooks", type=int, default=8, help="webhooks subscribed to every event")
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--no-build", action="store_true", help="use the existing release binary")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)

    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-webhooks-") as work:
        server, url, setup_token = api.start_server(
            work, extra="[webhooks]\nallowed_networks = [\"127.0.0.0/8\"]\n")
        try:
            token = setup(url, setup_token)
            latencies = latency(url, token, receiver, args.latency_events)
            throughput = load(url, token, receiver, args, work)
        finally:
            server.terminate()
            server.wait(timeout=30)
            receiver.stop()
    report(latencies, throughput, args)


class Receiver:
    """The receiving end, in its own process: it answers and timestamps deliveries."""

    def __init__(self):
        self.commands, remote = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=serve, args=(remote,), daemon=True)
        self.process.start()
        self.port = self.commands.recv()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def take(self):
        """Every delivery since the last call: (arrival time, path, headers, body)."""
        self.commands.send("take")
        return self.commands.recv()

    def stop(self):
        self.process.terminate()


def serve(commands):
    arrivals = []

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                arrivals.append((arrived, path, headers, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def control():
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, commands.recv)
            if command == "take":
                taken = arrivals[:]
                del arrivals[:len(taken)]
                commands.send(taken)

    async def run():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        commands.send(server.sockets[0].getsockname()[1])
        await control()

    asyncio.run(run())


def call(url, method, path, token, body=None):
    request = urllib.request.Request(url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def setup(url, setup_token):
    return api.post(f"{url}/v1/setup", {
        "token": setup_token,
        "email": "bench@example.com",
        "password": "bench-password-long-enough",
        "displayName": "Bench",
        "organizationName": "Bench",
    })["accessToken"]


def check_standard(headers):
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if name not in headers:
            sys.exit(f"a delivery lacks {name}: {headers}")


def latency(url, token, receiver, events):
    """Seconds from each API call to its delivery's arrival."""
    hook = call(url, "POST", "/v1/webhooks", token,
                {"url": receiver.url("/latency"), "events": ["api_key.created"]})
    sent = {}
    for n in range(events):
        name = f"latency-{n}"
        sent[name] = time.time()
        call(url, "POST", "/v1/api-keys", token, {"name": name})
        time.sleep(0.02)
    deadline = time.time() + 30
    arrived = {}
    while len(arrived) < events and time.time() < deadline:
        for at, path, headers, body in receiver.take():
            check_standard(headers)
            payload = json.loads(body)
            name = payload["data"].get("name", "")
            if path == "/latency" and name in sent:
                arrived[name] = at
        time.sleep(0.05)
    if len(arrived) < events:
        sys.exit(f"latency: {len(arrived)} of {events} deliveries arrived")
    call(url, "DELETE", f"/v1/webhooks/{hook['id']}", token)
    receiver.take()
    return sorted(arrived[name] - sent[name] for name in sent)


def load(url, token, receiver, args, work):
    for n in range(args.webhooks):
        call(url, "POST", "/v1/webhooks", token, {"url": receiver.url(f"/load/{n}"), "events": ["*"]})
    key = call(url, "POST", "/v1/api-keys", token, {"name": "renamed"})
    receiver.take()
    script = os.path.join(work, "rename.lua")
    with open(script, "w") as f:
        f.write(f"""
wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/api-keys/{key['id']}", nil, '{{"name":"renamed-' .. n .. '"}}')
end
""")
    started = time.time()
    output = subprocess.run(
        ["wrk", "-t", "1", "-c", "8", "-d", f"{args.duration}s", "-s", script, url],
        capture_output=True, text=True, check=True).stdout
    load_end = time.time()
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        sys.exit(f"wrk: {non_2xx.group(1)} failed responses\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    expected = requests * args.webhooks
    arrivals = []
    deadline = load_end + 120
    while len(arrivals) < expected and time.time() < deadline:
        arrivals += [a for a in receiver.take() if a[1].startswith("/load/")]
        time.sleep(0.1)
    for _, _, headers, _ in arrivals:
        check_standard(headers)
    ids = {(a[1], a[2]["webhook-id"]) for a in arrivals}
    if len(arrivals) < expected:
        sys.exit(f"throughput: {len(arrivals)} of {expected} deliveries arrived within 2 minutes")
    first, last = min(a[0] for a in arrivals), max(a[0] for a in arrivals)
    return {
        "events": requests,
        "events_per_s": requests / (load_end - started),
        "deliveries": len(arrivals),
        "distinct": len(ids),
        "per_s": len(arrivals) / (last - first),
        "trail": last - load_end,
    }


def report(latencies, throughput, args):
    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    print(f"{os.cpu_count()} cores shared by sealbox, wrk and the receiver\n")
    print(f"event-to-receipt latency ({len(latencies)} events, one at a time): "
          f"p50 {pct(0.5):.1f} ms, p90 {pct(0.9):.1f} ms, p99 {pct(0.99):.1f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.1f} ms")
    t = throughput
    print(f"throughput: {t['events']} events in {args.duration} s ({t['events_per_s']:.0f}/s) x "
          f"{args.webhooks} webhooks = {t['deliveries']} deliveries ({t['distinct']} distinct), "
          f"{t['per_s']:.0f} deliveries/s sustained; the last arrived {t['trail']:.2f} s after the load")
    print(f"\ngoals: p50 under 100 ms ({pct(0.5):.1f}), at least 500 deliveries/s ({t['per_s']:.0f})")


if __name__ == "__main__":
    main()
