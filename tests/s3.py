"""A real S3 API on 127.0.0.1 for the tests: moto's server (bench/s3_server.py, shared with the bench)."""

from __future__ import annotations

from bench.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

__all__ = ["ACCESS_KEY", "SECRET_KEY", "all_objects", "moto_server"]


def all_objects(env: dict, bucket: str) -> dict[str, bytes]:
    """Every object's bytes (the test greps them)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out
