#!/usr/bin/env python3
"""End-to-end transfer throughput in the browser beside the CLI, on one server in one run.

Starts a release binary of sealbox on a fresh data directory (plain HTTP on loopback: a
secure context for the browser, so both receive paths work) with its first admin, and
a headless Chromium driven over the DevTools protocol by tests/browser/drive.py, then on
one random file of --size-mib (default 512):

  sealbox send              the CLI encrypts (SBX1) as it uploads with tus, creates and
                            finalizes the transfer (end-to-end)
  sealbox receive           the CLI unlocks, downloads, verifies and decrypts into a part
                            file and renames it into place
  browser send              /send signed in: the page encrypts with WebCrypto as it
                            uploads with tus (File.slice, never the whole file), then
                            finalizes; timed from the click on Send to the link shown
  browser receive (picker)  /t/{id}?download=picker: the fetch body piped through the
                            decrypting TransformStream into a FileSystemWritableFileStream
                            (a headless browser has no save dialog: the origin-private
                            file system stands in for the picked folder, on the same
                            disk); timed from the click on "Download all" to its end
  browser receive (worker)  /t/{id}?download=worker: the download service worker fetches,
                            decrypts and answers as an attachment that the browser's
                            download manager writes to disk; timed from the click to
                            the file complete on disk

and prints MB/s (10^6 bytes per second) for each, the median of --runs. The browser
receives the transfer the browser sent and the CLI receives the one the CLI sent; the
CLI's and the worker's files are compared (SHA-256) with the source, the picker's by its
size (each SBX1 segment was authenticated as it was decrypted). Server, CLI and browser
share the machine's cores, as they would not in real use.

    bench/web_transfers.py [--size-mib 512] [--runs 1] [--no-build] [--binary PATH]

The release binary is $CARGO_TARGET_DIR/release/sealbox (else target/release/sealbox);
Chromium is $SBX_CHROMIUM or `chromium` on PATH.
"""

import argparse
import hashlib
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
EMAIL = "bench@example.com"
PASSWORD = "bench-password-long-enough"
PICKER_STAND_IN = (
    "window.showDirectoryPicker = async () => navigator.storage.getDirectory();"
    "window.showSaveFilePicker = async (o) =>"
    " (await navigator.storage.getDirectory()).getFileHandle(o.suggestedName, { create: true });"
)


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# bench/files.py's server start (with its first admin) and helpers; the browser driver.
files = load("bench_files", "bench/files.py")
drive = load("drive", "tests/browser/drive.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512, help="size of the test file")
    parser.add_argument("--runs", type=int, default=1, help="runs of each measurement")
    parser.add_argument("--no-build", action="store_true", help="use the existing release binary")
    parser.add_argument("--binary", help="the sealbox binary to run (default: the release build)")
    args = parser.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    binary = args.binary or os.path.join(target, "release", "sealbox")
    if not args.binary and not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    if not os.path.exists(binary):
        sys.exit(f"{binary} is missing: build it (cargo build --release) or pass --binary")
    files.api.BINARY = binary
    chromium = drive.find_browser()
    if chromium is None:
        sys.exit("no Chromium found (set SBX_CHROMIUM, or apt-get install chromium)")

    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-web-", dir=files.bench_dir()) as work:
        need = size * 8 + 512 * MIB
        free = shutil.disk_usage(work).free
        if free < need:
            sys.exit(f"{work}: {free // MIB} MiB free, the run needs about {need // MIB} MiB")
        source = os.path.join(work, "source.bin")
        digest = files.write_random(source, size)
        home = os.path.join(work, "sealbox")
        os.mkdir(home)
        sealbox = files.Sealbox(home, "off")
        try:
            key = sealbox.call("POST", "/v1/api-keys", {
                "name": "bench", "scopes": ["transfers:read", "transfers:write"],
            })["key"]
            cli = Cli(binary, work, sealbox.url, key)
            rows = {label: [] for label in (
                "sealbox send", "sealbox receive", "browser send",
                "browser receive (picker)", "browser receive (worker)")}
            for run in range(args.runs):
                started = time.perf_counter()
                link = cli.send(source)
                rows["sealbox send"].append(size / (time.perf_counter() - started))
                out = os.path.join(work, f"cli-{run}")
                os.mkdir(out)
                rows["sealbox receive"].append(size / files.timed(lambda: cli.receive(link, out)))
                if sha256(os.path.join(out, "source.bin")) != digest:
                    sys.exit("sealbox receive: the received bytes differ from the sent ones")
                shutil.rmtree(out)
                revoke(sealbox, link)

                browser = Page(chromium, os.path.join(work, f"chromium-{run}"))
                try:
                    send_seconds, link = browser.send(sealbox.url, source)
                    rows["browser send"].append(size / send_seconds)
                    rows["browser receive (picker)"].append(size / browser.receive_picker(link, size))
                    downloads = os.path.join(work, f"downloads-{run}")
                    os.mkdir(downloads)
                    seconds = browser.receive_worker(link, downloads, size)
                    rows["browser receive (worker)"].append(size / seconds)
                    if sha256(os.path.join(downloads, "source.bin")) != digest:
                        sys.exit("browser receive (worker): the downloaded bytes differ from the sent ones")
                    shutil.rmtree(downloads)
                finally:
                    browser.close()
                revoke(sealbox, link)
                print(f"run {run + 1}: done", file=sys.stderr)
        finally:
            sealbox.stop()

    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"End-to-end transfers of {args.size_mib} MiB over HTTP on loopback, one server "
          f"(median of {args.runs}; MB/s = 10^6 bytes/s; {version})")
    results = {label: statistics.median(v) for label, v in rows.items()}
    print(f"  {'':<26} {'MB/s':>8}  vs CLI")
    for label, reference in (
        ("sealbox send", None),
        ("browser send", "sealbox send"),
        ("sealbox receive", None),
        ("browser receive (picker)", "sealbox receive"),
        ("browser receive (worker)", "sealbox receive"),
    ):
        ratio = f"  {results[label] / results[reference]:.2f}x" if reference else ""
        print(f"  {label:<26} {results[label] / 1e6:8.1f}{ratio}")


class Cli:
    """`sealbox send` / `sealbox receive` as a user runs them, with an API key."""

    def __init__(self, binary, work, server, key):
        config = os.path.join(work, "cli-config")
        os.mkdir(config)
        self.binary = binary
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
        self.env.update(XDG_CONFIG_HOME=config, SEALBOX_SERVER=server, SEALBOX_API_KEY=key)

    def run(self, args):
        done = subprocess.run([self.binary] + args, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"sealbox {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def send(self, path):
        return self.run(["send", path]).strip()

    def receive(self, link, out):
        self.run(["receive", link, "-o", out])


class Page:
    """One headless Chromium with one page, driven as the tests drive it."""

    def __init__(self, chromium, profile):
        os.mkdir(profile)
        self.browser = drive.Browser(chromium, os.path.join(profile, "profile"), os.path.join(profile, "log"))
        self.browser.call("Browser.getVersion", session=False, timeout=30)
        self.browser.start_page()
        self.step(["init-script", PICKER_STAND_IN])

    def step(self, step, timeout=30):
        self.browser.run(step, timeout)

    def wait(self, expression, timeout=3600):
        self.step(["js", expression], timeout)

    def send(self, base, source):
        """Signs in and sends `source` from /send; returns (seconds, link)."""
        self.step(["open", f"{base}/login?next=/send"])
        self.step(["fill", "#login-email", EMAIL])
        self.step(["fill", "#login-password", PASSWORD])
        self.step(["click", "#login-form button[type=submit]"])
        self.wait("location.pathname === '/send' && !document.getElementById('send-form').hidden", 30)
        self.step(["files", "#send-files", [source]])
        started = time.perf_counter()
        self.step(["click", "#send-form button[type=submit]"])
        self.step(["text", "The key is in the link"], 3600)
        seconds = time.perf_counter() - started
        return seconds, self.browser.evaluate("document.getElementById('link').value")

    def receive_picker(self, link, size):
        """Downloads through the save-picker path; returns the seconds it took."""
        base, fragment = link.split("#", 1)
        self.step(["open", f"{base}?download=picker#{fragment}"])
        self.step(["text", "source.bin"])
        started = time.perf_counter()
        self.step(["click", "#download-all"])
        self.step(["text", "All 1 file is downloaded."], 3600)
        seconds = time.perf_counter() - started
        written = self.browser.evaluate(
            "(async () => (await (await (await navigator.storage.getDirectory())"
            ".getFileHandle('source.bin')).getFile()).size)()")
        if written != size:
            sys.exit(f"browser receive (picker): {written} bytes written, not {size}")
        self.browser.evaluate("(async () => { await (await navigator.storage.getDirectory())"
                              ".removeEntry('source.bin'); return true; })()")
        return seconds

    def receive_worker(self, link, downloads, size):
        """Downloads through the service worker into `downloads`; returns the seconds
        until the file is complete on disk."""
        base, fragment = link.split("#", 1)
        self.step(["downloads", downloads])
        self.step(["open", f"{base}?download=worker#{fragment}"])
        self.step(["text", "source.bin"])
        started = time.perf_counter()
        self.step(["click", "#download-all"])
        self.step(["downloaded", 1], 3600)
        seconds = time.perf_counter() - started
        path = os.path.join(downloads, "source.bin")
        if not os.path.exists(path) or os.path.getsize(path) != size:
            sys.exit(f"browser receive (worker): {os.listdir(downloads)} in {downloads}")
        return seconds

    def close(self):
        self.browser.close()


def revoke(sealbox, link):
    """Revokes a transfer (its bytes go) so runs do not add up on disk."""
    transfer_id = link.split("/t/", 1)[1].split("#", 1)[0].split("?", 1)[0]
    try:
        sealbox.call("DELETE", f"/v1/transfers/{transfer_id}")
    except urllib.error.HTTPError as error:
        if error.code != 410:
            raise


def sha256(path):
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


if __name__ == "__main__":
    main()
