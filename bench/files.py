#!/usr/bin/env python3
"""Upload and download throughput of a 1 GiB file, beside nginx, and peak memory.

Starts, on loopback and on fresh data directories, two release binaries of sealbox (one
plain HTTP, one HTTPS with its self-signed certificate) and one nginx (Debian package
`nginx-light` or `nginx`) with a generated configuration: a plain and a TLS listener (the
same certificate and key as sealbox), `dav_methods PUT` for uploads and static files
(`sendfile`) for downloads. Then, for each protocol and --runs times, with `curl` as the
client on the same random file:

  nginx PUT        curl -T FILE to nginx (written to the page cache, never synced)
  sealbox upload   POST /v1/files/presign, curl -T FILE to the upload URL, POST
                   /v1/files/{id}/finalize: encrypted as it arrives (SBX1, AES-256-GCM),
                   synced every 64 MiB and at the end, hashed (BLAKE3) and moved into place
  nginx GET        curl the stored file
  sealbox download GET /v1/files/{id}/download (X-User-Secret), curl the link:
                   read, verified and decrypted segment by segment

and prints the median MB/s (10^6 bytes per second) of each with the ratio to nginx. The
targets (issue 20): upload at least 90% of nginx PUT over HTTP and HTTPS, download at least
90% of nginx GET over HTTP and 95% over HTTPS. As a reference for what the two cores can
do, it prints the single-core AES-256-GCM rate of SBX1 segments (examples/crypto_rates).

Last, it uploads --rss-mib (default 4096) through plain HTTP while sampling the sealbox
process's resident memory, and prints the peak (target: under 32 MiB) beside its resident
memory before the upload.

With --backend s3 it also starts a moto S3 server on loopback (tests/s3/moto_server.py,
with the Python of --moto-python, default $SBX_TEST_VENV/bin/python) and a third sealbox
over plain HTTP whose blobs go to its bucket (`[storage] backend = "s3"`, 16 MiB parts),
runs the same upload and download against it, and prints each with its ratio to the
local backend's HTTP figures of the same run. moto is an in-memory Python server, so
the ratio says what the S3 path costs against one particular slow store, not against
AWS S3 or MinIO.

    bench/files.py [--size-mib 1024] [--runs 3] [--rss-mib 4096] [--backend local|s3]
                   [--binary target/release/sealbox] [--no-build]
"""

import argparse
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_SECRET = "bench-user-secret-phrase"
MIB = 1024 * 1024

# bench/api.py's server start (config, setup token), by path.
_spec = importlib.util.spec_from_file_location("bench_api", os.path.join(ROOT, "bench", "api.py"))
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the test file")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--rss-mib", type=int, default=4096,
                        help="size of the upload whose peak memory is measured (0: skip)")
    parser.add_argument("--no-build", action="store_true", help="use the existing release binary")
    parser.add_argument("--backend", choices=("local", "s3"), default="local",
                        help="s3: also measure a sealbox whose blobs are in a moto S3 bucket")
    parser.add_argument("--moto-python", default=os.path.join(
                            os.environ.get("SBX_TEST_VENV", os.path.join(ROOT, ".venv")), "bin", "python"),
                        help="a Python with moto[server] (tests/requirements.txt)")
    parser.add_argument("--binary", default=api.BINARY, help="the sealbox binary to run")
    args = parser.parse_args()
    if args.binary != api.BINARY:
        args.no_build = True
    api.BINARY = args.binary

    nginx = reference_tools(args.no_build)

    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-files-", dir=bench_dir()) as work:
        need = size * 4 + args.rss_mib * MIB + 512 * MIB
        free = shutil.disk_usage(work).free
        if free < need:
            sys.exit(f"{work}: {free // MIB} MiB free, the run needs about {need // MIB} MiB")
        source = os.path.join(work, "source.bin")
        digest = write_random(source, size)

        servers = {}
        moto = None
        try:
            for proto, tls in (("http", "off"), ("https", "self-signed")):
                home = os.path.join(work, f"sealbox-{proto}")
                os.mkdir(home)
                servers[proto] = Sealbox(home, tls)
            if args.backend == "s3":
                moto = Moto(args.moto_python)
                home = os.path.join(work, "sealbox-s3")
                os.mkdir(home)
                servers["s3"] = Sealbox(home, "off", storage=moto.storage())
            cert, key = servers["https"].certificate()
            web = Nginx(nginx, os.path.join(work, "nginx"), cert, key)
            try:
                results = {}
                for proto in ("http", "https"):
                    sealbox = servers[proto]
                    nginx_url = web.url(proto)
                    rows = {"nginx PUT": [], "sealbox upload": [], "nginx GET": [], "sealbox download": []}
                    for run in range(args.runs):
                        rows["nginx PUT"].append(size / timed(lambda: web.put(proto, source, size, cert)))
                        upload_seconds, file_id = sealbox.upload(source, size, cert)
                        rows["sealbox upload"].append(size / upload_seconds)
                        rows["nginx GET"].append(size / timed(lambda: curl_get(f"{nginx_url}/source.bin", size, cert)))
                        rows["sealbox download"].append(size / timed(lambda: sealbox.download(file_id, size, cert)))
                        if run == 0:
                            check_same(sealbox, file_id, cert, digest, f"sealbox over {proto}")
                            check_same_url(f"{nginx_url}/source.bin", cert, digest, f"nginx over {proto}")
                        sealbox.delete(file_id)
                        web.remove()
                    results[proto] = {label: statistics.median(v) for label, v in rows.items()}
                    print(f"{proto}: done", file=sys.stderr)
                if moto:
                    results["s3"] = s3_rows(servers["s3"], source, size, digest, args.runs)
                    print("s3: done", file=sys.stderr)
                rss = peak_memory(servers["http"], source, args.rss_mib * MIB) if args.rss_mib else None
            finally:
                web.stop()
        finally:
            for server in servers.values():
                server.stop()
            if moto:
                moto.stop()

    print_report(results, rss, args)


def s3_rows(sealbox, source, size, digest, runs):
    """The upload and download of the sealbox on the S3 backend, median of `runs`."""
    rows = {"sealbox upload": [], "sealbox download": []}
    for run in range(runs):
        upload_seconds, file_id = sealbox.upload(source, size, None)
        rows["sealbox upload"].append(size / upload_seconds)
        rows["sealbox download"].append(size / timed(lambda: sealbox.download(file_id, size, None)))
        if run == 0:
            check_same(sealbox, file_id, None, digest, "sealbox on S3")
        sealbox.delete(file_id)
    return {label: statistics.median(v) for label, v in rows.items()}


class Moto:
    """moto's S3 server on a free loopback port with one bucket (tests/s3/moto_server.py),
    stopped by closing its standard input."""

    BUCKET = "sealbox-bench"

    def __init__(self, python):
        if not os.path.exists(python):
            sys.exit(f"{python}: no such Python; --backend s3 needs one with moto[server] "
                     "(pip install -r tests/requirements.txt), given by --moto-python")
        self.process = subprocess.Popen(
            [python, os.path.join(ROOT, "tests", "s3", "moto_server.py"), self.BUCKET],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            sys.exit(f"moto did not start: {line!r}")
        self.endpoint = f"http://127.0.0.1:{line.split()[1]}"

    def storage(self):
        """The `[storage]` lines of a sealbox on this bucket."""
        return f"""backend = "s3"
[storage.s3]
endpoint = "{self.endpoint}"
bucket = "{self.BUCKET}"
prefix = "blobs"
access_key_id = "bench"
secret_access_key = "bench-secret"
part_size_bytes = {16 * MIB}
"""

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def reference_tools(no_build):
    """Checks for nginx and curl and builds the release binary (unless `no_build`);
    returns nginx's path."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        sys.exit("nginx is missing: apt-get install nginx-light")
    if shutil.which("curl") is None:
        sys.exit("curl is missing: apt-get install curl")
    if not no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bins",
                        "--example", "crypto_rates"], cwd=ROOT, check=True)
    return nginx


def segment_rates():
    """examples/crypto_rates' SBX1 lines (GB/s on one core), or {} if it is not built."""
    example = os.path.join(os.path.dirname(api.BINARY), "examples", "crypto_rates")
    if not os.path.exists(example):
        return {}
    out = subprocess.run([example, "0.5"], capture_output=True, text=True, check=True).stdout
    rates = dict(line.split() for line in out.splitlines() if line.strip())
    return {name: float(value) for name, value in rates.items() if name.endswith("_gb_per_s")}


def print_segment_rates():
    rates = segment_rates()
    if rates:
        print("AES-256-GCM on one core (examples/crypto_rates): "
              + ", ".join(f"{name.removesuffix('_gb_per_s')} {value:.2f} GB/s"
                          for name, value in rates.items()))


def bench_dir():
    """Where the test files go: $SEALBOX_BENCH_DIR, else the repository's target/ (a real
    disk; /tmp may be a small tmpfs)."""
    path = os.environ.get("SEALBOX_BENCH_DIR") or os.path.join(ROOT, "target")
    os.makedirs(path, exist_ok=True)
    return path


def write_random(path, size):
    """A file of random bytes (incompressible, so nothing on the path can shortcut it);
    returns its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MIB))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def curl(args, cert, write_out=""):
    """Runs curl; returns (status, body), where body is what curl printed before the status:
    the response, or `write_out`'s variables when the response goes to a file. TLS is
    verified against the one certificate."""
    command = ["curl", "--silent", "--show-error", "--http1.1",
               "--write-out", write_out + "\n%{http_code}"]
    if cert:
        command += ["--cacert", cert]
    out = subprocess.run(command + args, capture_output=True, check=True).stdout
    body, _, status = out.rpartition(b"\n")
    return int(status), body


def curl_get(url, size, cert):
    status, body = curl(["--output", "/dev/null", url], cert, write_out="%{size_download}")
    if status not in (200, 206) or int(body) != size:
        sys.exit(f"GET {url}: status {status}, {body!r} bytes, expected {size}")


def check_same_url(url, cert, digest, what):
    """Downloads once more, outside the timings, and compares the SHA-256."""
    command = ["curl", "--silent", "--show-error", "--fail", url]
    if cert:
        command[1:1] = ["--cacert", cert]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as download:
        hasher = hashlib.sha256()
        for chunk in iter(lambda: download.stdout.read(MIB), b""):
            hasher.update(chunk)
    if download.returncode != 0 or hasher.hexdigest() != digest:
        sys.exit(f"{what}: the downloaded bytes differ from the uploaded ones")


def check_same(sealbox, file_id, cert, digest, what):
    check_same_url(sealbox.download_link(file_id, cert), cert, digest, what)


class Sealbox:
    """One release binary on its own data directory, with a first admin who has a key pair."""

    def __init__(self, home, tls, storage=""):
        self.process, self.url, setup_token = api.start_server(home, tls, storage=storage)
        self.data = os.path.join(home, "data")
        self.context = None
        if tls != "off":
            self.context = ssl.create_default_context(cafile=self.certificate()[0])
        pair = self.call("POST", "/v1/setup", {
            "token": setup_token,
            "email": "bench@example.com",
            "password": "bench-password-long-enough",
            "displayName": "Bench",
            "organizationName": "Bench",
        })
        self.token = pair["accessToken"]
        self.call("POST", "/v1/keys/generate", headers={"X-User-Secret": USER_SECRET})

    def certificate(self):
        """The self-signed certificate and key sealbox wrote (PEM paths)."""
        tls = os.path.join(self.data, "tls")
        names = sorted(os.listdir(tls))
        cert = [n for n in names if "cert" in n and n.endswith(".pem")]
        key = [n for n in names if "key" in n and n.endswith(".pem")]
        if len(cert) != 1 or len(key) != 1:
            sys.exit(f"{tls}: expected one certificate and one key, found {names}")
        return os.path.join(tls, cert[0]), os.path.join(tls, key[0])

    def call(self, method, path, body=None, headers=None):
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if getattr(self, "token", None):
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        with urllib.request.urlopen(request, context=self.context) as response:
            text = response.read()
            return json.loads(text) if text else None

    def upload(self, source, size, cert):
        """presign + PUT + finalize; returns (seconds, file id)."""
        started = time.perf_counter()
        presigned = self.call("POST", "/v1/files/presign", {
            "filename": "source.bin",
            "contentType": "application/octet-stream",
            "size": size,
        })
        status, body = curl(["--upload-file", source, presigned["uploadUrl"]], cert)
        if status != 200:
            sys.exit(f"sealbox PUT: status {status}: {body[:500]!r}")
        self.call("POST", f"/v1/files/{presigned['fileId']}/finalize")
        return time.perf_counter() - started, presigned["fileId"]

    def download_link(self, file_id, cert):
        return self.call("GET", f"/v1/files/{file_id}/download",
                         headers={"X-User-Secret": USER_SECRET})["url"]

    def download(self, file_id, size, cert):
        curl_get(self.download_link(file_id, cert), size, cert)

    def delete(self, file_id):
        self.call("DELETE", f"/v1/files/{file_id}")

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {field} for {self.process.pid}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Nginx:
    """nginx from the Debian package, on its own generated configuration and ports."""

    def __init__(self, binary, home, cert, key):
        self.home = home
        self.root = os.path.join(home, "root")
        os.makedirs(self.root)
        self.ports = {"http": free_port(), "https": free_port()}
        temp = {name: os.path.join(home, name) for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            os.mkdir(path)
        config = os.path.join(home, "nginx.conf")
        # Started as root, nginx's workers would drop to `nobody`, who cannot enter the
        # private work directory; run them as the invoking user instead.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        with open(config, "w") as f:
            f.write(f"""
{user}
daemon off;
worker_processes auto;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_max_body_size 0;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    server {{
        listen 127.0.0.1:{self.ports['http']};
        listen 127.0.0.1:{self.ports['https']} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {self.root};
        location / {{
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
}}
""")
        self.process = subprocess.Popen([binary, "-c", config, "-p", home],
                                        stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for port in self.ports.values():
            wait_for_port(port)

    def url(self, proto):
        return f"{proto}://127.0.0.1:{self.ports[proto]}"

    def put(self, proto, source, size, cert):
        status, body = curl(["--upload-file", source, f"{self.url(proto)}/source.bin"], cert)
        if status not in (201, 204):
            sys.exit(f"nginx PUT: status {status}: {body[:500]!r}")
        if os.path.getsize(os.path.join(self.root, "source.bin")) != size:
            sys.exit("nginx PUT: the stored file has the wrong size")

    def remove(self):
        os.remove(os.path.join(self.root, "source.bin"))

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nginx did not listen on {port}")


def peak_memory(sealbox, source, size):
    """Uploads `size` bytes (the source file's bytes repeated, streamed from a pipe) while
    sampling the server's resident memory every 20 ms. Returns (before, peak) in KiB."""
    presigned = sealbox.call("POST", "/v1/files/presign", {
        "filename": "big.bin",
        "contentType": "application/octet-stream",
        "size": size,
    })
    before = sealbox.rss_kib()
    peak = before
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sealbox.rss_kib())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # The source file repeated: curl reads a pipe, with the length declared up front.
        command = ["curl", "--silent", "--show-error", "--http1.1", "--upload-file", "-",
                   "--header", f"Content-Length: {size}", "--output", "/dev/null",
                   "--write-out", "%{http_code}", presigned["uploadUrl"]]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as upload:
            with open(source, "rb") as f:
                left = size
                while left:
                    f.seek(0)
                    while left:
                        chunk = f.read(min(4 * MIB, left))
                        if not chunk:
                            break
                        upload.stdin.write(chunk)
                        left -= len(chunk)
            upload.stdin.close()
            status = upload.stdout.read().decode()
        if status != "200":
            sys.exit(f"sealbox PUT of {size} bytes: status {status}")
        sealbox.call("POST", f"/v1/files/{presigned['fileId']}/finalize")
    finally:
        done.set()
        sampler.join()
    peak = max(peak, sealbox.rss_kib())
    sealbox.delete(presigned["fileId"])
    return before, peak


def print_report(results, rss, args):
    print(f"{args.size_mib} MiB file, curl over loopback, median of {args.runs} runs, "
          f"{os.cpu_count()} cores shared by servers and client\n")
    print(f"{'':24} {'MB/s':>9} {'vs nginx':>9}")
    goals = {
        "http": {"sealbox upload": ("nginx PUT", 0.90), "sealbox download": ("nginx GET", 0.90)},
        "https": {"sealbox upload": ("nginx PUT", 0.90), "sealbox download": ("nginx GET", 0.95)},
    }
    verdicts = []
    s3 = results.pop("s3", None)
    for proto, rows in results.items():
        for label in ("nginx PUT", "sealbox upload", "nginx GET", "sealbox download"):
            rate = rows[label] / 1e6
            if label in goals[proto]:
                reference, goal = goals[proto][label]
                ratio = rows[label] / rows[reference]
                print(f"{proto + ' ' + label:24} {rate:>9.1f} {ratio:>8.2f}x")
                verdicts.append(f"{proto} {label}: {ratio:.2f} of {reference} (target: at least {goal:.2f})")
            else:
                print(f"{proto + ' ' + label:24} {rate:>9.1f}")
    if s3:
        print(f"\n{'':24} {'MB/s':>9} {'vs local':>9}")
        for label in ("sealbox upload", "sealbox download"):
            ratio = s3[label] / results["http"][label]
            print(f"{'s3 ' + label:24} {s3[label] / 1e6:>9.1f} {ratio:>8.2f}x")
            verdicts.append(f"s3 {label}: {ratio:.2f} of the local backend's over http (moto on loopback)")
    print()
    for verdict in verdicts:
        print(verdict)
    print("\nnginx PUT writes into the page cache and returns; a sealbox upload is encrypted, hashed\n"
          "and synced to disk before it is acknowledged.")
    print_segment_rates()
    if rss:
        before, peak = rss
        print(f"\n{args.rss_mib} MiB upload over http: sealbox resident memory {before / 1024:.1f} MiB "
              f"before, peak {peak / 1024:.1f} MiB (target: under 32 MiB)")


if __name__ == "__main__":
    main()
