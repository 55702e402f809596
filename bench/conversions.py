#!/usr/bin/env python3
"""Image conversions per second: sealbox's queue beside Pillow, on the same images.

Makes N photo-like PNG images (default 100, 1024x768, gradients and noise so they do not
compress to nothing) with Pillow, uploads them to a fresh sealbox (server-encrypted),
queues their conversion to JPEG at 1024x768 -> 512 wide (quality 85) in one bulk
request, and times from the request to the last job's end (decrypting, decoding,
resizing, encoding, encrypting and storing each result, `[conversions] concurrency`
jobs at once). Then Pillow converts the same images the same way in this process, one
after another, and the same with a process pool of the same concurrency. Prints images
per second for each.

    bench/conversions.py [--images 100] [--size 1024x768] [--concurrency 2]
                         [--profile release|debug] [--no-build]

The binary is $CARGO_TARGET_DIR/<profile>/sealbox (else under target/); `release` is
built unless --no-build. Needs Pillow (tests/requirements.txt).
"""

import argparse
import concurrent.futures
import importlib.util
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_SECRET = "bench-user-secret-phrase"

_spec = importlib.util.spec_from_file_location("bench_api", os.path.join(ROOT, "bench", "api.py"))
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)


def make_image(seed, width, height):
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    tint = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = Image.blend(Image.blend(image, noise, 0.3), tint, 0.3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def pillow_convert(data, width):
    image = Image.open(io.BytesIO(data))
    image = image.convert("RGB")
    height = max(1, round(image.height * width / image.width))
    image = image.resize((width, height), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return len(out.getvalue())


def request(url, method="GET", body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as response:
        text = response.read()
        return json.loads(text) if text else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--width", type=int, default=512, help="output width")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--profile", default="release", choices=["release", "debug"])
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.profile == "release" and not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    api.BINARY = os.path.join(api.TARGET, args.profile, "sealbox")

    images = [make_image(i, width, height) for i in range(args.images)]
    total_mib = sum(len(i) for i in images) / (1 << 20)
    print(f"{args.images} PNG images {width}x{height} ({total_mib:.1f} MiB) -> JPEG {args.width} wide, "
          f"quality 85; {os.cpu_count()} cores; sealbox {args.profile} build, "
          f"concurrency {args.concurrency}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="sealbox-bench-conv-") as work:
        extra = f"""
[conversions]
concurrency = {args.concurrency}
bulk_max = {max(100, args.images)}
max_unfinished_per_user = {max(1000, args.images)}
"""
        server, url, token = api.start_server(work, extra=extra)
        try:
            jwt, _ = api.credentials(url, token)
            auth = {"Authorization": f"Bearer {jwt}", "X-User-Secret": USER_SECRET}
            request(f"{url}/v1/keys/generate", "POST", headers=auth)
            ids = []
            for n, data in enumerate(images):
                presigned = request(f"{url}/v1/files/presign", "POST",
                                    {"filename": f"img{n}.png", "contentType": "image/png",
                                     "size": len(data)}, auth)
                request(presigned["uploadUrl"], "PUT", raw=data)
                request(f"{url}/v1/files/{presigned['fileId']}/finalize", "POST", headers=auth)
                ids.append(presigned["fileId"])
            items = [{"fileId": i, "to": "jpeg", "options": {"width": args.width, "quality": 85}}
                     for i in ids]
            started = time.perf_counter()
            jobs = request(f"{url}/v1/conversions/bulk", "POST", {"items": items}, auth)["items"]
            pending = {j["id"] for j in jobs}
            failed = []
            while pending:
                for job_id in list(pending):
                    job = request(f"{url}/v1/conversions/{job_id}", headers=auth)
                    if job["status"] not in ("queued", "running"):
                        pending.discard(job_id)
                        if job["status"] != "succeeded":
                            failed.append(job)
                if pending:
                    time.sleep(0.02)
            sealbox_seconds = time.perf_counter() - started
            if failed:
                sys.exit(f"{len(failed)} conversions failed: {failed[0]}")
        finally:
            server.terminate()
            server.wait(timeout=30)

    started = time.perf_counter()
    for data in images:
        pillow_convert(data, args.width)
    pillow_seconds = time.perf_counter() - started
    with concurrent.futures.ProcessPoolExecutor(args.concurrency) as pool:
        list(pool.map(pillow_convert, images[:2], [args.width] * 2))  # warm the workers
        started = time.perf_counter()
        list(pool.map(pillow_convert, images, [args.width] * len(images)))
        pool_seconds = time.perf_counter() - started

    n = args.images
    print(f"{'':40} {'images/s':>9} {'seconds':>8}")
    print(f"{'sealbox (queue, ' + str(args.concurrency) + ' at once, end to end)':40} {n / sealbox_seconds:>9.1f} {sealbox_seconds:>8.2f}")
    print(f"{'Pillow, one process':40} {n / pillow_seconds:>9.1f} {pillow_seconds:>8.2f}")
    print(f"{'Pillow, ' + str(args.concurrency) + ' processes':40} {n / pool_seconds:>9.1f} {pool_seconds:>8.2f}")


if __name__ == "__main__":
    main()
