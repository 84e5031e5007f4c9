"""Files of the landing zone, quarantine and state store on any fsspec filesystem.

Local paths and object stores (``s3://bucket/prefix``, or any fsspec URL) go through the
same few functions, which keep two promises:

- **Atomic replacement.** A reader sees the old file or the new one, never half of one.
  Locally a file is written under a unique temporary name beside it and renamed into
  place (two writers never share a temporary file). On an object store one PUT (or one
  completed multipart upload) is already atomic, so the object is written in place: no
  temporary object to copy and none left behind by a crash.
- **Clear errors.** A bucket that does not exist, or credentials the store refuses,
  become `StorageAccessError` naming the bucket and key (a `ConfigError`: the input is
  wrong, the CLI exits 2). Transient errors (timeouts, 5xx, throttling) are retried by
  botocore's standard retry mode, configured here for every S3 filesystem.

Endpoint, region and credentials come only from the standard AWS environment variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`) or
an instance profile, read by botocore itself: never from agora.yml, never logged.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import uuid
from collections.abc import Callable
from typing import Any

import fsspec

from agora.config import ConfigError

log = logging.getLogger("agora.storage")

# botocore's "standard" mode retries throttling, 5xx and connection errors with backoff.
fsspec.config.conf.setdefault("s3", {}).setdefault(
    "config_kwargs", {"retries": {"max_attempts": 6, "mode": "standard"}, "connect_timeout": 10, "read_timeout": 60}
)
# At DEBUG botocore logs signed request headers (the access key id among them) and
# aiobotocore/s3fs log call arguments: keep them quiet whatever the root level is.
for _name in ("botocore", "aiobotocore", "s3fs", "boto3"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


class StorageAccessError(ConfigError):
    """The store refused us (no such bucket, credentials refused): one line naming bucket and key."""


def fs_of(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path as that filesystem names it) for a local path or URL."""
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:  # s3fs, gcsfs, adlfs: the one for the URL's scheme is missing
        raise ConfigError(f"{url}: {e}") from None


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def full_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The path as a URL other tools (DuckDB, fsspec) open: plain locally, protocol://... otherwise."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def _tmp_name(path: str) -> str:
    return posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")


def write_with(url: str, write: Callable[[Any], None], *, text: bool = False) -> None:
    """Replace `url` atomically with what `write(file)` writes (see the module doc)."""
    fs, path = fs_of(url)
    mode = "w" if text else "wb"
    try:
        if not is_local(fs):
            with fs.open(path, mode) as f:
                write(f)
            return
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = _tmp_name(path)
        try:
            with fs.open(tmp, mode) as f:
                write(f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    except OSError as e:
        raise storage_error(e, url) from e


def write_text(url: str, text: str) -> None:
    write_with(url, lambda f: f.write(text), text=True)


def read_text(url: str) -> str | None:
    """The file's text, or None when it does not exist."""
    fs, path = fs_of(url)
    try:
        with fs.open(path, "r") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise storage_error(e, url) from e


def read_json(url: str, default: Any = None) -> Any:
    text = read_text(url)
    return default if text is None else json.loads(text)


def write_json(url: str, value: Any) -> None:
    write_text(url, json.dumps(value, indent=2, sort_keys=True))


def remove(url: str) -> bool:
    """Delete a file if it exists; True if it did."""
    fs, path = fs_of(url)
    try:
        fs.rm(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        raise storage_error(e, url) from e


# -- errors ---------------------------------------------------------------------------------


def _bucket_key(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1] if "://" in url else url
    bucket, _, key = rest.partition("/")
    return bucket, key


def storage_error(e: BaseException, url: str) -> OSError:
    """An OSError naming the bucket and key (or the path); access problems become StorageAccessError."""
    if isinstance(e, StorageAccessError):
        return e
    code = _error_code(e)
    where = url
    if "://" in url and not url.startswith("file://"):
        bucket, key = _bucket_key(url)
        where = f"bucket {bucket!r}, key {key!r}"
    if code in ("NoSuchBucket",):
        return StorageAccessError(f"{url}: bucket {_bucket_key(url)[0]!r} does not exist")  # type: ignore[return-value]
    if code in _REFUSED or isinstance(e, PermissionError):
        return StorageAccessError(f"{url}: access refused by the store ({code or 'permission denied'}) for {where}")  # type: ignore[return-value]
    err = OSError(getattr(e, "errno", None) or errno.EIO, f"{where}: {type(e).__name__}: {_message(e)}")
    return err


_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
    "403",
}


def _error_code(e: BaseException) -> str | None:
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            return response.get("Error", {}).get("Code")
        e = e.__cause__ or e.__context__
    return None


def _message(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]


_checked: set[str] = set()


def check_root(url: str, what: str) -> None:
    """Fail early, in one line, when an object-store root cannot be used (`what` names the setting).

    Checks the bucket once per process: missing bucket or refused credentials raise
    StorageAccessError (nothing is created: a typo must not make a new bucket).
    """
    if "://" not in url or url.startswith("file://"):
        return
    fs, path = fs_of(url)
    bucket = path.split("/", 1)[0]
    key = f"{fs.protocol}:{bucket}"
    if key in _checked:
        return
    if not hasattr(fs, "call_s3"):
        return  # other object stores: their first operation reports
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except FileNotFoundError:
        raise StorageAccessError(f"{what}: {url}: bucket {bucket!r} does not exist") from None
    except Exception as e:  # noqa: BLE001 - any refusal becomes one line naming the bucket
        code = _error_code(e) or type(e).__name__
        raise StorageAccessError(
            f"{what}: {url}: the store refused access to bucket {bucket!r} ({code}); "
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL"
        ) from None
    _checked.add(key)


def check_roots(cfg: Any) -> None:
    """Every configured path that is on an object store (landing, state, quarantine)."""
    for kind in ("landing", "state", "quarantine"):
        check_root(cfg.path(kind), f"paths.{kind}")
