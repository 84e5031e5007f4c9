"""`validate_landing`: the ledger, then the suites over new or changed files, then quarantine."""

from __future__ import annotations

import logging
import time
from typing import Any

import fsspec

from agora import locks
from agora.config import AgoraConfig
from agora.landing import landing_file_fingerprints
from agora.tombstones import load_tombstones
from expectations.landing.files import day, file_url, inspect_files, relative
from expectations.landing.ledger import read_ledger, save_ledger
from expectations.landing.quarantine import quarantine
from expectations.landing.suites import run_checks
from expectations.result import ContractFailed, ContractResult

log = logging.getLogger("agora.contracts.landing")


def validate_landing(cfg: AgoraConfig, *, full: bool = False) -> ContractResult:
    """Check the landing files new or changed since the last pass (every file with `full`).

    Offending files are quarantined and ContractFailed is raised; see the package doc.
    Runs under the ``landing-contract`` lock (agora.locks): a concurrent run waits, then
    reads the ledger this one wrote, so no entry is lost and no file is quarantined twice.
    """
    with locks.hold(cfg.path("state"), locks.LANDING_CONTRACT) as lock:
        return _validate_locked(cfg, full=full, lock=lock)


def _validate_locked(cfg: AgoraConfig, *, full: bool, lock: Any) -> ContractResult:
    started = time.monotonic()
    root = cfg.path("landing")
    fs, root_path = fsspec.core.url_to_fs(root)
    root_path = root_path.rstrip("/")
    listed = {relative(root_path, p): (p, fp) for p, fp in landing_file_fingerprints(root).items()}
    ledger = read_ledger(cfg)
    todo = [rel for rel, (_, fp) in listed.items() if full or ledger.get(rel) != fp]
    result = ContractResult(suite="landing", files_unchanged=len(listed) - len(todo))
    if not todo:
        if set(ledger) != set(listed):  # files removed since: forget them
            save_ledger(cfg, {rel: fp for rel, (_, fp) in listed.items()}, lock)
        result.seconds = time.monotonic() - started
        log.info("%s", result.summary())
        return result

    files = inspect_files(fs, root, [listed[rel][0] for rel in todo])
    for f in files:
        f.fresh = ledger.get(f.rel) != listed[f.rel][1]
    result.files_checked = len(files)
    result.rows_checked = sum(f.rows for f in files)
    days = {day(f.rel) for f in files}
    new = set(todo)
    validated = [file_url(fs, p) for rel, (p, _) in listed.items() if rel not in new and day(rel) in days]
    result.files_compared = len(validated)

    by_url = {f.url: f for f in files}
    tombstones = load_tombstones(cfg.path("state"))
    problems = run_checks(cfg, db_files=files, validated=validated, fs=fs, result=result, tombstones=tombstones)
    for url in sorted(problems):
        file = by_url.get(url) or inspect_files(fs, root, [fs._strip_protocol(url)])[0]  # a validated file in a tie
        result.quarantined.append(quarantine(fs, cfg.path("quarantine"), file, problems[url]))
        by_url[url] = file
    result.seconds = time.monotonic() - started
    if result.failures:
        # Nothing new enters the ledger; quarantined files leave it (moved back, they are checked again).
        gone = {by_url[u].rel for u in problems}
        kept = {rel: fp for rel, fp in ledger.items() if rel not in gone and listed.get(rel, (None, None))[1] == fp}
        if kept != ledger:
            save_ledger(cfg, kept, lock)
        log.error("%s", result.summary())
        raise ContractFailed(result)
    save_ledger(cfg, {rel: fp for rel, (_, fp) in listed.items()}, lock)
    log.info("%s", result.summary())
    return result
