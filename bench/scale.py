#!/usr/bin/env python3
"""How the cost of a request grows with the size of the instance.

Fills one instance, in three steps, to 10%, 50% and 100% of 100,000 users in 1,000
organizations (each user with a key pair, two small server-encrypted files and one KV
secret: 200,000 files, 100,000 secrets), 1,000,000 audit entries (a tenth in the
benchmark's organization) and 2,000 transfers of the benchmark's organization, and after
each step measures on the release server, over HTTP:

  start-up          from starting the binary to its "serving" line, on the filled data
  GET /v1/files     the benchmark user's 20 files, names decrypted (X-User-Secret)
  GET /v1/kv        the benchmark user's 20 secret names
  GET /v1/transfers the first page, and a page from a cursor in the middle
  GET /v1/audit     the first page, a page from a cursor in the middle of the
                    organization's log, and a filter matching one entry in it
  GET /v1/audit/verify   the organization's whole chain, in entries per second
  POST /v1/auth/login    the benchmark user, and a fixture user

Requests go one at a time on one keep-alive connection, so p50/p99 are the server's cost
per request, not queueing. The fill is made by `examples/scale_fixtures.rs` with the
crate's own store and service code in large transactions (the API would take hours); the
benchmark user's own objects and the transfers go through the API. The server is stopped
while the fixtures are written. The table ends with each measurement's growth: its cost
at 100% over its cost at 10% (ten times the data). Flat or logarithmic growth stays near
1; a cost that grows in proportion to the data (a scan) shows as several times, and is a
defect.

    bench/scale.py [--requests 200] [--steps 10,50,100] [--no-build] [--profile debug]

The binaries are $CARGO_TARGET_DIR/release/{sealbox,examples/scale_fixtures} (else under
target/); `--profile debug` runs the dev-profile build instead (built unless --no-build). The data directory goes under $SEALBOX_BENCH_DIR (else target/);
the full instance takes about 3 GB of disk.
"""

import argparse
import base64
import http.client
import importlib.util
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "scale-password-long-enough"
USER_SECRET = "scale-user-secret"
OWN_OBJECTS = 20
TRANSFERS_AT_FULL = 2000


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# bench/api.py's server start; bench/files.py's choice of a real disk.
api = load("bench_api", "bench/api.py")
files = load("bench_files", "bench/files.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per list measurement")
    parser.add_argument("--steps", default="10,50,100", help="sizes to measure at, in percent")
    parser.add_argument("--no-build", action="store_true", help="use the existing binaries")
    parser.add_argument("--profile", default="release", choices=["release", "debug"],
                        help="which build to run")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]

    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    api.BINARY = os.path.join(target, args.profile, "sealbox")
    fixtures = os.path.join(target, args.profile, "examples", "scale_fixtures")
    if not args.no_build:
        profile = ["--release"] if args.profile == "release" else []
        subprocess.run(["cargo", "build", *profile, "--locked", "--quiet", "--bin", "sealbox",
                        "--example", "scale_fixtures"], cwd=ROOT, check=True)
    for binary in (api.BINARY, fixtures):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: build it (cargo build --release --example scale_fixtures)")

    began = time.monotonic()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-scale-", dir=files.bench_dir()) as work:
        data = os.path.join(work, "data")
        server, url, token = api.start_server(work)
        try:
            bench = Bench(url)
            bench.prepare(token)
        finally:
            stop(server)
        done = 0
        for step in steps:
            t = time.monotonic()
            fill = subprocess.run(
                [fixtures, "--data-dir", data, "--from", str(done), "--to", str(step),
                 "--bench-org", bench.org, "--bench-user", bench.user_id,
                 "--password", PASSWORD, "--user-secret", USER_SECRET],
                capture_output=True, text=True)
            if fill.returncode != 0:
                sys.exit(f"scale_fixtures failed:\n{fill.stderr}")
            print(f"[{step:3}%] {fill.stdout.strip()} (wall {time.monotonic() - t:.1f} s)", flush=True)
            started = time.monotonic()
            server, url, _ = api.start_server(work, setup=False)
            startup = time.monotonic() - started
            try:
                bench.url = url
                bench.add_transfers(TRANSFERS_AT_FULL * step // 100)
                results[step] = bench.measure(args.requests, data, step)
                results[step]["start-up"] = {"p50": startup * 1000, "p99": startup * 1000}
            finally:
                stop(server)
            done = step
            print(f"[{step:3}%] measured ({time.monotonic() - began:.0f} s so far)", flush=True)
        du = subprocess.run(["du", "-sh", data], capture_output=True, text=True).stdout.split()[0]
        # Before the data directory goes: removing 200,000 blobs takes a while.
        print(f"\n{args.profile} build")
        print_table(results, steps, du, time.monotonic() - began)


def stop(server):
    server.terminate()
    server.wait(timeout=60)


class Bench:
    """The benchmark's own user and organization, and one keep-alive connection."""

    def __init__(self, url):
        self.url = url
        self.conn = None
        self.transfers = []

    def connect(self):
        parts = urllib.parse.urlsplit(self.url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def call(self, method, path, body=None, headers=None, expect=(200, 201, 204)):
        if self.conn is None:
            self.connect()
        headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status not in expect:
            sys.exit(f"{method} {path}: {response.status} {raw[:500].decode(errors='replace')}")
        return json.loads(raw) if raw else None

    def prepare(self, setup_token):
        """The first admin (the benchmark user), their key pair, an API key, and their own
        files and secrets, all through the API."""
        pair = self.call("POST", "/v1/setup", {
            "token": setup_token, "email": "bench@example.com", "password": PASSWORD,
            "displayName": "Bench", "organizationName": "Bench",
        })
        bearer = {"Authorization": f"Bearer {pair['accessToken']}"}
        self.call("POST", "/v1/keys/generate", headers={**bearer, "X-User-Secret": USER_SECRET})
        scopes = ["files:read", "files:write", "kv:read", "kv:write", "transfers:read",
                  "transfers:write", "audit:read"]
        self.key = self.call("POST", "/v1/api-keys", {"name": "scale", "scopes": scopes},
                             bearer)["key"]
        self.user_id, self.org = pair["user"]["id"], pair["user"]["organizations"][0]["id"]
        for n in range(OWN_OBJECTS):
            content = base64.b64encode(f"bench file {n}\n".encode() * 8).decode()
            self.call("POST", "/v1/files", {"fileName": f"bench-{n}.txt", "contentB64": content,
                                            "contentType": "text/plain"}, self.auth())
            value = base64.b64encode(os.urandom(32)).decode()
            self.call("PUT", f"/v1/kv/bench-secret-{n}", {"valueB64": value}, self.auth())

    def auth(self, secret=False):
        headers = {"X-Api-Key": self.key}
        if secret:
            headers["X-User-Secret"] = USER_SECRET
        return headers

    def add_transfers(self, total):
        """Transfers of the benchmark organization, up to `total` (pending ones: a
        transfer's list entry is the same before its files arrive)."""
        self.conn = None
        while len(self.transfers) < total:
            n = len(self.transfers)
            created = self.call("POST", "/v1/transfers", {
                "name": f"Quarterly report {n}", "message": "Here it is.",
                "recipients": [{"email": f"client{n}@example.com"}], "expiresInHours": 720,
            }, self.auth())
            self.transfers.append(created["id"])

    def measure(self, requests, data, step):
        self.conn = None
        audit_mid, audit_entries = audit_cursor(data, self.org)
        transfer_mid = self.transfers[len(self.transfers) // 2]
        fixture_user = f"user{step * 1000 - 1}@scale.example"
        measurements = {
            "GET /v1/files": ("GET", "/v1/files", None, self.auth(secret=True), requests // 4),
            "GET /v1/kv": ("GET", "/v1/kv", None, self.auth(), requests),
            "GET /v1/transfers": ("GET", "/v1/transfers", None, self.auth(), requests),
            "GET /v1/transfers (mid cursor)": (
                "GET", f"/v1/transfers?before={transfer_mid}", None, self.auth(), requests),
            "GET /v1/audit": ("GET", "/v1/audit", None, self.auth(), requests),
            "GET /v1/audit (mid cursor)": (
                "GET", f"/v1/audit?before={audit_mid}", None, self.auth(), requests),
            "GET /v1/audit (rare action)": (
                "GET", "/v1/audit?action=api_key.created", None, self.auth(), requests),
            "POST /v1/auth/login": (
                "POST", "/v1/auth/login", {"email": "bench@example.com", "password": PASSWORD},
                {}, 20),
            "POST /v1/auth/login (fixture)": (
                "POST", "/v1/auth/login", {"email": fixture_user, "password": PASSWORD}, {}, 20),
        }
        out = {}
        for label, (method, path, body, headers, count) in measurements.items():
            self.call(method, path, body, headers)  # warm: caches, the unlock cache
            times = []
            for _ in range(count):
                t = time.perf_counter()
                self.call(method, path, body, headers)
                times.append((time.perf_counter() - t) * 1000)
            out[label] = summarize(times)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            report = self.call("GET", "/v1/audit/verify", headers=self.auth())
            runs.append(time.perf_counter() - t)
            if not report.get("valid"):
                sys.exit(f"the audit chain does not verify: {report}")
        best = min(runs)
        out["GET /v1/audit/verify"] = {"p50": statistics.median(runs) * 1000, "p99": max(runs) * 1000,
                                       "rate": report["entries"] / best, "entries": report["entries"]}
        if report["entries"] < audit_entries:
            sys.exit(f"verify saw {report['entries']} entries, the log holds {audit_entries}")
        return out


def audit_cursor(data, org):
    """The id of the entry in the middle of the organization's log, and how many it has
    (read from the database: the API pages, it does not jump)."""
    db = sqlite3.connect(f"file:{os.path.join(data, 'sealbox.db')}?mode=ro", uri=True)
    try:
        count = db.execute("SELECT count(*) FROM audit_log WHERE org_id = ?", (org,)).fetchone()[0]
        mid = db.execute("SELECT id FROM audit_log WHERE org_id = ? ORDER BY seq LIMIT 1 OFFSET ?",
                         (org, count // 2)).fetchone()[0]
    finally:
        db.close()
    return mid, count


def summarize(times):
    times = sorted(times)
    return {"p50": statistics.median(times), "p99": times[min(len(times) - 1, int(len(times) * 0.99))]}


def verdict(ratio):
    if ratio < 1.6:
        return "flat"
    if ratio < 3:
        return "grows (sub-linear)"
    return "LINEAR: defect"


def print_table(results, steps, du, seconds):
    first, last = steps[0], steps[-1]
    print(f"\nper request cost vs size; one request at a time, {os.cpu_count()} cores shared by "
          f"server and client; data directory at {last}%: {du}; whole run {seconds / 60:.1f} min\n")
    header = f"{'':34}" + "".join(f"{f'{s}% p50':>10}{'p99':>8}" for s in steps)
    print(header + f"{'growth':>9}  verdict")
    for label in results[last]:
        row = f"{label:34}"
        for step in steps:
            r = results[step][label]
            row += f"{r['p50']:>10.2f}{r['p99']:>8.2f}"
        ratio = results[last][label]["p50"] / results[first][label]["p50"]
        if label == "GET /v1/audit/verify":
            # Verification is linear in the chain by nature: judge its rate per entry.
            ratio = results[first][label]["rate"] / results[last][label]["rate"]
        print(row + f"{ratio:>8.2f}x  {verdict(ratio)}")
    print("\n(times in ms; start-up is one measurement per size)")
    print("GET /v1/audit/verify entries/s: " + ", ".join(
        f"{s}%: {results[s]['GET /v1/audit/verify']['rate']:,.0f} "
        f"({results[s]['GET /v1/audit/verify']['entries']:,} entries)" for s in steps))


if __name__ == "__main__":
    main()
