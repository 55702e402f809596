"""A real S3-compatible server on loopback for the tests (tests/it/blob_store_s3.rs).

moto's server mode (the `moto[server]` package pinned in tests/requirements.txt): the
S3-compatible server the package registries this project uses provide. Creates the
buckets named on the command line, prints `PORT <n>` and serves until its standard input
closes (the test dropped it, or died).

With INITIAL_NO_AUTH_ACTION_COUNT=<n> in the environment, moto checks credentials after
its first n requests (the bucket creations): then only keys moto issued are accepted, so
any configured key is refused as an unknown access key id.
"""

import sys

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
    )
    for bucket in sys.argv[1:]:
        client.create_bucket(Bucket=bucket)
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
