"""A real S3 API on 127.0.0.1: moto's standalone server, started as its own process.

Shared by the tests (tests/s3.py) and `python -m bench --landing s3`. Not in-process
mocking: agora talks to it over HTTP through s3fs/botocore exactly as to AWS, with
endpoint and credentials from the standard AWS environment variables only. The keys
below are moto's, for a throwaway server: no real credentials.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ACCESS_KEY = "AKIAAGORATESTKEY0001"
SECRET_KEY = "agora-test-secret-never-in-logs-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(buckets: tuple[str, ...] = ("agora-test",), *, auth: bool = False):
    """Yield the env (AWS_* variables) of a fresh moto server holding `buckets`; stop it by PID.

    `auth`: the server checks signatures and IAM policies (moto lets the first 3 calls in
    unauthenticated: they create the user, its policy and its key, which the env then holds).
    """
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    server_env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "3"} if auth else {})}
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        import boto3

        if auth:
            import json

            iam = boto3.client(
                "iam",
                endpoint_url=env["AWS_ENDPOINT_URL"],
                region_name="us-east-1",
                aws_access_key_id="bootstrap",
                aws_secret_access_key="bootstrap",
            )
            iam.create_user(UserName="agora")
            allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            iam.put_user_policy(UserName="agora", PolicyName="all", PolicyDocument=json.dumps(allow))
            key = iam.create_access_key(UserName="agora")["AccessKey"]
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key["AccessKeyId"], key["SecretAccessKey"]
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        for b in buckets:
            client.create_bucket(Bucket=b)
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
