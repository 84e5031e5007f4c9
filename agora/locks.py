"""Named locks in the state store, so that processes sharing only storage take turns.

Two locks matter (docs/privacy.md, "What each guarantee rests on"):

- ``landing`` orders every change of the landing zone against every change of the
  tombstone list. An extract holds it while it re-reads the tombstones, filters its rows
  and writes landing, quarantine and its cursor; a privacy run holds it while it adds
  tombstones and scrubs the files. Whichever comes second sees the other's work, so an
  erasure cannot be undone by an extract that started before it.
- ``privacy`` serialises privacy runs (apply, purge, completion), so the audit log and the
  journal are never read-modified-written by two processes at once.
- ``dp`` serialises differential-privacy releases: the budget ledger is read, checked and
  appended by one run at a time, so no line is lost and no month is drawn (spent) twice.
- ``landing-contract`` serialises landing-contract runs: the ledger of checked files is
  read at the start and written at the end of one run at a time, and no two runs
  quarantine the same file.

Where the lock lives follows ``paths.state``:

- **Local disk**: ``fcntl.flock`` on ``<state>/locks/<name>.lock``. The kernel releases it
  when the process dies, so a crash never leaves it held. (One host; on NFS flock depends
  on the server.)
- **Object store** (S3 and compatibles that honour conditional writes): a lease object
  ``<state>/locks/<name>.lock`` created with ``If-None-Match: *`` (exactly one creator
  wins). The holder rewrites it every ``lease/4`` seconds (``If-Match`` its own ETag). A
  waiter that sees the same ETag unchanged for a whole lease on its *own* monotonic
  clock (no clock comparison between machines) takes it over with ``If-Match`` that
  ETag, so a holder that died frees it after one lease. A holder that finds its lease
  gone (frozen past the lease) sets ``lost``; writers check it before their last step.

Locks are re-entrant within a thread: a privacy run that holds ``landing`` can call code
that takes it again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from agora.storage import fs_of, is_local

log = logging.getLogger("agora.locks")

LANDING = "landing"
PRIVACY = "privacy"
DP = "dp"
LANDING_CONTRACT = "landing-contract"


class LockTimeout(RuntimeError):
    """The lock stayed held by someone else for longer than we wait."""


class LockLost(RuntimeError):
    """Our lease on an object-store lock expired while we held it: stop before writing more."""


def _timeout() -> float:
    return float(os.environ.get("AGORA_LOCK_TIMEOUT_SECONDS", "3600"))


def _lease() -> float:
    return float(os.environ.get("AGORA_LOCK_LEASE_SECONDS", "60"))


def lock_url(state_root: str, name: str) -> str:
    return posixpath.join(state_root, "locks", f"{name}.lock")


def _holder() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}


class _FileLock:
    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self.lost = False
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        import fcntl

        os.makedirs(os.path.dirname(self.url), exist_ok=True)
        fd = os.open(self.url, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        wait = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() > deadline:
                holder = _read_local(self.url)
                os.close(fd)
                raise LockTimeout(f"lock {self.name!r} ({self.url}) still held after {timeout:.0f} s by {holder}")
            time.sleep(wait)
            wait = min(wait * 1.5, 0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_local(path: str) -> str:
    try:
        with open(path) as f:
            return f.read() or "another process"
    except OSError:
        return "another process"


class _S3Lease:
    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self.fs, path = fs_of(url)
        self.bucket, _, self.key = path.partition("/")
        self.lost = False
        self._etag: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._body = {**_holder(), "owner": uuid.uuid4().hex}

    def _put(self, **condition: str) -> str:
        self._body["beat"] = time.time()
        out = self.fs.call_s3(
            "put_object", Bucket=self.bucket, Key=self.key, Body=json.dumps(self._body).encode(), **condition
        )
        return out["ETag"]

    def _head(self) -> str | None:
        try:
            return self.fs.call_s3("head_object", Bucket=self.bucket, Key=self.key)["ETag"]
        except FileNotFoundError:
            return None

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        lease = _lease()
        seen: tuple[str, float] | None = None
        wait = 0.05
        while True:
            try:
                self._etag = self._put(IfNoneMatch="*")
                break
            except FileExistsError:
                pass
            except OSError as e:
                if not _precondition(e):
                    raise
            etag = self._head()
            now = time.monotonic()
            if etag is not None:
                if seen is None or seen[0] != etag:
                    seen = (etag, now)
                elif now - seen[1] > lease:
                    with contextlib.suppress(FileNotFoundError, FileExistsError):
                        try:
                            self._etag = self._put(IfMatch=etag)
                            log.warning("lock %r: took over a lease not renewed for %.0f s", self.name, now - seen[1])
                            break
                        except OSError as e:
                            if not _precondition(e):
                                raise
            if now > deadline:
                raise LockTimeout(
                    f"lock {self.name!r} (s3://{self.bucket}/{self.key}) still held after {timeout:.0f} s"
                )
            time.sleep(wait)
            wait = min(wait * 1.5, 1.0)
        self._beat = threading.Thread(target=self._renew, args=(lease,), daemon=True, name=f"lease-{self.name}")
        self._beat.start()

    def _renew(self, lease: float) -> None:
        while not self._stop.wait(lease / 4):
            try:
                self._etag = self._put(IfMatch=self._etag)
            except Exception as e:  # noqa: BLE001 - a failed renewal is retried until the lease is gone
                if isinstance(e, OSError) and _precondition(e) or isinstance(e, FileNotFoundError):
                    self.lost = True
                    log.error("lock %r: our lease was taken over; stopping renewal", self.name)
                    return
                log.warning("lock %r: lease renewal failed (%s); retrying", self.name, type(e).__name__)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.lost or self._etag is None:
            return
        try:
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=self._etag)
        except FileNotFoundError:
            pass
        except OSError as e:
            if not _precondition(e):
                raise


def _precondition(e: BaseException) -> bool:
    """A 412 from a conditional write (s3fs maps it to OSError EINVAL, or FileExistsError)."""
    from agora.storage import _error_code

    return isinstance(e, FileExistsError) or _error_code(e) in (
        "PreconditionFailed",
        "412",
        "ConditionalRequestConflict",
    )


_held = threading.local()


@contextlib.contextmanager
def hold(state_root: str, name: str, *, timeout: float | None = None) -> Iterator[Any]:
    """Hold lock `name` of the state store at `state_root` (re-entrant per thread).

    Yields the lock object; check ``.lost`` before a final write on an object store.
    """
    url = lock_url(state_root, name)
    table: dict[str, list] = _held.__dict__.setdefault("locks", {})
    if url in table:
        table[url][1] += 1
        try:
            yield table[url][0]
        finally:
            table[url][1] -= 1
        return
    fs, path = fs_of(url)
    lock = _FileLock(path, name) if is_local(fs) else _S3Lease(url, name)
    started = time.monotonic()
    lock.acquire(_timeout() if timeout is None else timeout)
    waited = time.monotonic() - started
    if waited > 1:
        log.info("lock %r acquired after waiting %.1f s", name, waited)
    table[url] = [lock, 1]
    try:
        yield lock
    finally:
        del table[url]
        lock.release()


def ensure_held(lock: Any) -> None:
    """Raise LockLost when an object-store lease was lost (see the module doc)."""
    if getattr(lock, "lost", False):
        raise LockLost(f"lock {lock.name!r}: lease lost while held; nothing more is written, rerun the step")
