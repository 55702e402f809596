"""Uploads a file to sealbox with tuspy, the tus project's Python client, as an operator's
script would: creation (POST /v1/uploads with Upload-Length and Upload-Metadata), then
PATCH chunks, each continuing from the Upload-Offset the server answered.

With --interrupt-after N the first uploader sends N chunks and is abandoned, as if its
process had died; a new uploader given only the upload URL asks the server (HEAD) where
the upload stands and finishes it from there.

Prints one JSON object: the upload URL, the file id, the offset the server reported after
each chunk of each attempt, and where the resumed attempt started. Exits non-zero when the
server refuses a chunk or a chunk makes no progress. Used by tests/it/uploads_resume.rs.

Usage: python upload.py SERVER_URL ACCESS_TOKEN FILE CHUNK_BYTES [--interrupt-after N]
"""

import argparse
import json
import os
import sys

import requests
from tusclient import client

# Consecutive chunks without progress before giving up: tuspy itself would resend the same
# chunk forever.
MAX_STALLS = 3


class FileIdRecorder:
    """tuspy's creation request keeps only the Location header; sealbox also answers the
    file id (needed to finalize) in X-Sealbox-File-Id. Wraps requests.post, which tuspy's
    create_url calls, to keep it."""

    def __init__(self):
        self.file_id = None
        self._post = requests.post

    def __enter__(self):
        def post(*args, **kwargs):
            response = self._post(*args, **kwargs)
            self.file_id = response.headers.get("X-Sealbox-File-Id", self.file_id)
            return response

        requests.post = post
        return self

    def __exit__(self, *exc):
        requests.post = self._post


def send(uploader, offsets, chunks=None):
    """Sends chunks until the upload is complete (or `chunks` of them), recording the
    offset the server reports after each."""
    stalls = 0
    sent = 0
    while uploader.offset < uploader.stop_at and (chunks is None or sent < chunks):
        before = uploader.offset
        uploader.upload_chunk()
        sent += 1
        offsets.append(uploader.offset)
        stalls = stalls + 1 if uploader.offset <= before else 0
        if stalls >= MAX_STALLS:
            sys.exit(f"no progress: the server stays at offset {uploader.offset}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("token")
    parser.add_argument("file")
    parser.add_argument("chunk_size", type=int)
    parser.add_argument("--interrupt-after", type=int, default=None)
    args = parser.parse_args()

    tus = client.TusClient(
        args.server.rstrip("/") + "/v1/uploads",
        headers={"Authorization": f"Bearer {args.token}"},
    )
    metadata = {
        "filename": os.path.basename(args.file),
        "filetype": "application/octet-stream",
        "encryption": "server",
    }
    first = tus.uploader(file_path=args.file, chunk_size=args.chunk_size, metadata=metadata)
    with FileIdRecorder() as recorder:
        first.set_url(first.create_url())
    result = {"uploadUrl": first.url, "fileId": recorder.file_id, "first": [], "resumed": None}
    send(first, result["first"], chunks=args.interrupt_after)

    if args.interrupt_after is not None:
        # A fresh uploader that knows only the URL: its constructor asks the server (HEAD).
        second = tus.uploader(file_path=args.file, chunk_size=args.chunk_size, url=first.url)
        result["resumedAt"] = second.offset
        result["resumed"] = []
        send(second, result["resumed"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
