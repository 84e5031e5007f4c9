"""agora.yml validation: one-line errors naming the key, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agora.config import ConfigError, load_config
from tests.conftest import ROOT, write_config

GOOD_SOURCE = {"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}


def test_example_config_is_valid():
    cfg = load_config(ROOT / "agora.example.yml")
    assert {s.type for s in cfg.sources} >= {"discourse", "github", "mediawiki", "stackexchange", "x", "mastodon"}
    assert cfg.privacy.k_min == 5


@pytest.mark.parametrize(
    ("sources", "extra", "expected"),
    [
        ([{**GOOD_SOURCE, "bogus": 1}], {}, "sources.0.bogus: unknown key"),
        ([{**GOOD_SOURCE, "type": "myspace"}], {}, "sources.0: unknown source type 'myspace'"),
        ([{**GOOD_SOURCE, "base_url": "not a url"}], {}, "sources.0.base_url:"),
        ([GOOD_SOURCE, GOOD_SOURCE], {}, "duplicate source name 'forum'"),
        ([GOOD_SOURCE], {"privacy": {"k_min": "five"}}, "privacy.k_min:"),
        ([GOOD_SOURCE], {"privacy": {"k_min": 1}}, "privacy.k_min:"),
        ([{"name": "s", "type": "survey"}], {}, "sources.0.path: required key is missing"),
        ([GOOD_SOURCE], {"colour": "blue"}, "colour: unknown key"),
    ],
)
def test_invalid_config_names_the_key(tmp_path, sources, extra, expected):
    path = write_config(tmp_path, sources, **extra)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert expected in message
    assert "\n" not in message


def test_missing_pseudonym_key_is_a_config_error(tmp_path, monkeypatch):
    cfg = load_config(write_config(tmp_path, [GOOD_SOURCE]))
    monkeypatch.delenv("AGORA_PSEUDONYM_KEY")
    with pytest.raises(ConfigError, match="privacy.pseudonym_key_env: environment variable AGORA_PSEUDONYM_KEY"):
        cfg.pseudonym_key()


def _cli(args: list[str], cwd: Path, env_key: bool = True) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if not env_key:
        env.pop("AGORA_PSEUDONYM_KEY", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("agora")), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("sources", "env_key", "expected"),
    [
        ([{**GOOD_SOURCE, "base_url": "ftp//nope"}], True, "sources.0.base_url"),
        ([{**GOOD_SOURCE, "typo_key": 1}], True, "sources.0.typo_key: unknown key"),
        ([GOOD_SOURCE], False, "AGORA_PSEUDONYM_KEY"),
    ],
)
def test_cli_exits_2_and_writes_nothing(tmp_path, sources, env_key, expected):
    path = write_config(tmp_path, sources)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = _cli(["extract", "--config", str(path), "--source", "forum"], tmp_path, env_key)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_cli_unknown_source_exits_2(tmp_path):
    path = write_config(tmp_path, [GOOD_SOURCE])
    res = _cli(["extract", "--config", str(path), "--source", "nope"], tmp_path)
    assert res.returncode == 2
    assert "no source named 'nope'" in res.stderr
