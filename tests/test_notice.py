"""`agora notice`: the public page is generated from agora.yml and the connectors' declarations."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from agora.config import load_config
from agora.notice import write_notice
from connectors.base import connector_class
from connectors.registry import names
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
AGORA = ROOT / ".venv" / "bin" / "agora"
SOURCES = [
    {"name": "forum", "type": "discourse", "base_url": "https://discuss.example.org"},
    {"name": "gh", "type": "github", "repos": ["example/project"]},
    {"name": "toots", "type": "mastodon", "base_url": "https://fosstodon.org", "hashtag": "example"},
    {"name": "feedback", "type": "feedback_log", "path": "inputs/feedback.csv"},
]
PRIVACY = {
    "k_min": 7,
    "retention_days": 200,
    "contact": "privacy@example.org",
    "staff": [{"platform": "github", "account": "987654321"}],
}


def _notice(tmp_path: Path, sources: list[dict], out: str) -> str:
    cfg = load_config(write_config(tmp_path, sources, privacy=PRIVACY))
    md, html = write_notice(cfg, tmp_path / out)
    assert html.read_text().startswith("<!doctype html>")
    return md.read_text()


def test_notice_lists_every_source_with_what_it_reads_and_drops(tmp_path):
    text = _notice(tmp_path, SOURCES, "notice")
    for source in SOURCES:
        assert f"### {source['name']}\n" in text
    assert "The public forum at https://discuss.example.org/." in text
    assert "example/project on GitHub" in text and "#example on fosstodon.org" in text
    for platform in ("discourse", "github", "mastodon"):
        cls = connector_class(platform)
        assert all(field in text for field in cls.fields_read)
        assert all(wording in text for wording in cls.drop_reasons.values())
    assert "received_at, channel, status" in text  # the feedback file's columns
    assert "fewer than 7 people" in text and "after 200 days" in text
    assert "never linked" in text and "privacy@example.org" in text
    assert "Differential privacy" not in text  # off unless configured
    assert "987654321" not in text  # staff accounts are counted, never listed


def test_notice_changes_when_a_source_is_added(tmp_path):
    before = _notice(tmp_path, SOURCES, "a")
    added = {"name": "so", "type": "stackexchange", "site": "stackoverflow", "tagged": ["example"]}
    after = _notice(tmp_path, [*SOURCES, added], "b")
    assert "### so\n" not in before and "### so\n" in after
    assert "tagged example on stackoverflow (Stack Exchange)" in after
    assert "question.question_id" in after


def test_cli_writes_both_files_and_refuses_without_a_contact(tmp_path):
    config = write_config(tmp_path, SOURCES, privacy=PRIVACY)
    proc = subprocess.run(
        [str(AGORA), "notice", "--config", str(config), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notice.html", "notice.md"]

    no_contact = {k: v for k, v in PRIVACY.items() if k != "contact"}
    config.write_text(yaml.safe_dump({"community": "C", "sources": SOURCES, "privacy": no_contact}))
    proc = subprocess.run(
        [str(AGORA), "notice", "--config", str(config), "--out", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "config error: privacy.contact: the notice needs a contact for opt-out and erasure requests"
    ]
    assert not (tmp_path / "none").exists()

    config.write_text(
        yaml.safe_dump({"community": "C", "sources": SOURCES, "privacy": {**PRIVACY, "contact": "call Bob"}})
    )
    proc = subprocess.run([str(AGORA), "notice", "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "privacy.contact" in proc.stderr


def test_notice_says_when_differential_privacy_is_on(tmp_path):
    dp = {"rho_per_month": 0.25, "rho_cap_12_months": 2.0, "release_after_days": 35}
    cfg = load_config(write_config(tmp_path, SOURCES, privacy={**PRIVACY, "differential_privacy": dp}))
    md, html = write_notice(cfg, tmp_path / "dp")
    for text in (md.read_text(), html.read_text()):
        assert (
            "Differential privacy" in text
            and "ρ = 0.25 a month" in text
            and "at most 2.0 over any" in " ".join(text.split())
        )


def test_the_notice_module_names_no_platform():
    """What each platform reads and drops is worded in its connector module: adding one edits nothing here."""
    code = (ROOT / "agora" / "notice.py").read_text()
    assert [n for n in names() if re.search(rf"\b{n}\b", code, re.IGNORECASE)] == []
