#!/usr/bin/env python3
"""End-to-end transfer throughput of the CLI (`sealbox send` / `sealbox receive`) beside
nginx, over HTTPS on loopback.

Starts a release binary of sealbox with its self-signed certificate on a fresh data
directory and nginx with the same certificate (bench/files.py's setup), signs the CLI in
with `--pin` (the certificate's SHA-256), then --runs times on the same random file:

  nginx PUT        curl -T FILE to nginx over HTTPS (page cache, never synced)
  sealbox send     the CLI encrypts (SBX1, AES-256-GCM) as it uploads with tus; the
                   server stores the ciphertext durably; includes creating and
                   finalizing the transfer
  nginx GET        curl the stored file over HTTPS
  sealbox receive  the CLI unlocks, downloads, verifies and decrypts every segment into
                   a part file, then renames it into place

and prints the median MB/s (10^6 bytes per second) of each with the ratio to nginx. The
first run's received file is compared (SHA-256) with the source. Unlike bench/files.py,
where the server encrypts, here the client does, and both ends of each transfer run on
the same two cores. The targets (issue 20): send at least 0.90x of nginx PUT, receive at
least 0.70x of nginx GET. The single-core AES-256-GCM rate of SBX1 segments is printed as a
reference (bench/files.py's).

    bench/transfers.py [--size-mib 1024] [--runs 3] [--no-build]
"""

import argparse
import hashlib
import importlib.util
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
                      "release", "sealbox")
MIB = 1024 * 1024

# bench/files.py's servers (sealbox with its first admin, nginx) and helpers, by path.
_spec = importlib.util.spec_from_file_location("bench_files", os.path.join(ROOT, "bench", "files.py"))
files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the test file")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--no-build", action="store_true", help="use the existing release binary")
    args = parser.parse_args()

    nginx = files.reference_tools(args.no_build)

    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-transfers-", dir=files.bench_dir()) as work:
        need = size * 5 + 512 * MIB
        free = shutil.disk_usage(work).free
        if free < need:
            sys.exit(f"{work}: {free // MIB} MiB free, the run needs about {need // MIB} MiB")
        source = os.path.join(work, "source.bin")
        digest = files.write_random(source, size)

        home = os.path.join(work, "sealbox")
        os.mkdir(home)
        sealbox = files.Sealbox(home, "self-signed")
        try:
            cert, key = sealbox.certificate()
            web = files.Nginx(nginx, os.path.join(work, "nginx"), cert, key)
            try:
                cli = Cli(work, sealbox.url, pin_of(cert))
                rows = {"nginx PUT": [], "sealbox send": [], "nginx GET": [], "sealbox receive": []}
                for run in range(args.runs):
                    rows["nginx PUT"].append(size / files.timed(lambda: web.put("https", source, size, cert)))
                    link = None

                    def send():
                        nonlocal link
                        link = cli.send(source)

                    rows["sealbox send"].append(size / files.timed(send))
                    rows["nginx GET"].append(
                        size / files.timed(lambda: files.curl_get(f"{web.url('https')}/source.bin", size, cert)))
                    out = os.path.join(work, f"received-{run}")
                    os.mkdir(out)
                    rows["sealbox receive"].append(size / files.timed(lambda: cli.receive(link, out)))
                    received = os.path.join(out, "source.bin")
                    if run == 0 and sha256(received) != digest:
                        sys.exit("sealbox receive: the received bytes differ from the sent ones")
                    shutil.rmtree(out)
                    transfer_id = link.split("/t/", 1)[1].split("#", 1)[0]
                    sealbox.call("DELETE", f"/v1/transfers/{transfer_id}")
                    web.remove()
                results = {label: statistics.median(v) for label, v in rows.items()}
            finally:
                web.stop()
        finally:
            sealbox.stop()

    print(f"End-to-end transfers of {args.size_mib} MiB over HTTPS on loopback "
          f"(median of {args.runs}; MB/s = 10^6 bytes/s)")
    for label, reference, target in (("sealbox send", "nginx PUT", 0.90),
                                     ("sealbox receive", "nginx GET", 0.70)):
        print(f"  {reference:<16} {results[reference] / 1e6:9.1f} MB/s")
        print(f"  {label:<16} {results[label] / 1e6:9.1f} MB/s  "
              f"({results[label] / results[reference]:.2f}x, target: at least {target:.2f}x)")
    files.print_segment_rates()


class Cli:
    """The sealbox binary as a user runs it, with its own config directory."""

    def __init__(self, work, server, pin):
        config = os.path.join(work, "cli-config")
        os.mkdir(config)
        self.env = dict(os.environ, XDG_CONFIG_HOME=config, SEALBOX_PASSWORD="bench-password-long-enough")
        for name in ("SEALBOX_API_KEY", "SEALBOX_SERVER", "SEALBOX_TRANSFER_PASSWORD"):
            self.env.pop(name, None)
        self.run(["login", "--server", server, "--pin", pin, "--email", "bench@example.com"])

    def run(self, args):
        done = subprocess.run([BINARY] + args, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"sealbox {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def send(self, path):
        return self.run(["send", path]).strip()

    def receive(self, link, out):
        self.run(["receive", link, "-o", out])


def pin_of(cert_path):
    """The SHA-256 of the certificate (DER), as the CLI's --pin takes it."""
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def sha256(path):
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


if __name__ == "__main__":
    main()
