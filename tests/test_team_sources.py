"""Team-written sources: good files land, a bad row is quarantined with file:line, the rest land."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agora.config import load_config
from agora.extract import run_extract
from agora.landing import landing_files
from tests.conftest import write_config

SOURCES = [
    {"name": "survey", "type": "survey", "path": "inputs/survey.csv"},
    {"name": "feedback", "type": "feedback_log", "path": "inputs/feedback.csv"},
    {"name": "learnings", "type": "learnings", "path": "inputs/learnings.yml"},
    {"name": "team", "type": "team_activity", "path": "inputs/team_activity.csv"},
]
UNTIL = "2026-01-01T00:00:00Z"

GOOD = {
    "survey.csv": """response_id,answered_at,score
R1,2025-02-03,9
R2,2025-02-04T10:30:00Z,6
R3,2025-05-10,10
""",
    "feedback.csv": """feedback_id,received_at,channel,status,acted_at,responded_at,summary
FB-1,2025-03-01,forum,closed,2025-03-10,2025-03-12,"Docs skip the database step, please add it"
FB-2,2025-03-05,meetup,open,,,Wants more meetups in Asia
FB-3,2025-04-01,survey,acted,2025-04-20,,Search misses recent topics
""",
    "learnings.yml": """- date: 2025-03-14
  title: Fast answers bring newcomers back
  text: Questions answered within a day were followed by a second post more often.
  tags: [onboarding, support]
  kpis: [median_hours_to_first_response, returning_newcomer_rate]
- date: 2025-06-02
  title: The welcome thread alone does not retain people
  text: Pointing newcomers to a first task worked better.
  tags: [onboarding]
""",
    "team_activity.csv": """date,kind,title
2025-01-09,event,Community call
2025-02-11,talk,Conference talk on the roadmap
2025-03-02,post,Blog post: release highlights
""",
}


def setup_files(workdir: Path, files: dict[str, str]):
    inputs = workdir / "inputs"
    inputs.mkdir(exist_ok=True)
    for name, text in files.items():
        (inputs / name).write_text(text)
    return load_config(write_config(workdir, SOURCES))


def rows(cfg, source: str) -> list[dict]:
    out = []
    for f in landing_files(cfg.path("landing"), source):
        out += pq.read_table(f).to_pylist()
    return sorted(out, key=lambda r: (r["occurred_at"], r["record_id"]))


def quarantine_reasons(cfg, source: str) -> list[str]:
    files = sorted(Path(cfg.path("quarantine")).glob(f"{source}/dt=*/*.parquet"))
    return [r for f in files for r in pq.read_table(f).column("reason").to_pylist()]


def test_good_files_land(workdir):
    cfg = setup_files(workdir, GOOD)

    assert run_extract(cfg, "survey", None, UNTIL).landed == 3
    survey = rows(cfg, "survey")
    assert [(r["record_type"], r["record_id"], r["value"]) for r in survey] == [
        ("survey_response", "R1", 9.0),
        ("survey_response", "R2", 6.0),
        ("survey_response", "R3", 10.0),
    ]
    assert all(r["actor"] is None and r["title"] is None and r["text"] is None for r in survey)

    assert run_extract(cfg, "feedback", None, UNTIL).landed == 6
    fb = {r["record_id"]: r for r in rows(cfg, "feedback")}
    assert set(fb) == {"FB-1:received", "FB-1:acted", "FB-1:responded", "FB-2:received", "FB-3:received", "FB-3:acted"}
    assert fb["FB-1:received"]["tags"] == ["channel:forum", "event:received", "status:closed"]
    assert fb["FB-1:received"]["text"] == "Docs skip the database step, please add it"
    assert (fb["FB-1:acted"]["thread_id"], fb["FB-1:acted"]["parent_id"], fb["FB-1:acted"]["text"]) == (
        "FB-1",
        "FB-1",
        None,
    )
    assert fb["FB-1:responded"]["occurred_at"].isoformat() == "2025-03-12T00:00:00+00:00"

    run_extract(cfg, "learnings", None, UNTIL)
    learned = rows(cfg, "learnings")
    assert [r["title"] for r in learned] == [
        "Fast answers bring newcomers back",
        "The welcome thread alone does not retain people",
    ]
    assert learned[0]["tags"] == sorted(
        ["onboarding", "support", "kpi:median_hours_to_first_response", "kpi:returning_newcomer_rate"]
    )
    assert learned[0]["text"].startswith("Questions answered within a day")
    assert len(learned[0]["record_id"]) == 16

    run_extract(cfg, "team", None, UNTIL)
    team = rows(cfg, "team")
    assert [(r["record_type"], r["tags"], r["title"]) for r in team][0] == (
        "team_activity",
        ["kind:event"],
        "Community call",
    )
    assert len(team) == 3


@pytest.fixture
def cfg_with_good_files(workdir):
    return setup_files(workdir, GOOD)


def test_survey_lands_once_per_window_and_respects_since(cfg_with_good_files):
    cfg = cfg_with_good_files
    since = "2025-01-01T00:00:00Z"  # explicit: since=None would resume from the saved cursor
    assert run_extract(cfg, "survey", since, UNTIL).landed == 3
    assert run_extract(cfg, "survey", "2025-03-01T00:00:00Z", UNTIL).landed == 1  # R3 only
    assert run_extract(cfg, "survey", since, UNTIL).landed == 3  # same window again: replaced, not added
    # Two different windows are two runs with their own files (R3 in both); staging dedups by record_id.
    assert len(rows(cfg, "survey")) == 3 + 1


def test_stable_ids_across_reruns(cfg_with_good_files):
    cfg = cfg_with_good_files
    run_extract(cfg, "learnings", "2025-01-01", UNTIL)
    first = [r["record_id"] for r in rows(cfg, "learnings")]
    run_extract(cfg, "learnings", "2025-01-01", UNTIL)
    assert [r["record_id"] for r in rows(cfg, "learnings")] == first


BAD = {
    "survey.csv": """response_id,answered_at,score
R1,2025-02-03,9
R2,2025-02-30,8
R3,2025-02-05,eleven
R4,2025-02-06,11
R1,2025-02-07,5
R5,2025-02-08,7
""",
    "feedback.csv": """feedback_id,received_at,channel,status,acted_at,responded_at,summary
FB-1,2025-03-01,forum,closed,2025-03-10,2025-03-12,Fine
FB-2,2025-03-05,forum,acted,2025-03-01,,Acted before received
FB-3,2025-03-06,Our Forum!,open,,,Channel is free text

FB-4,2025-03-07,chat,open,,,"A summary
over two lines"
FB-5,not a date,chat,open,,,Bad date
""",
    "learnings.yml": """- date: 2025-03-14
  title: Good one
  text: Fine.
- date: 2025-04-01
  title: Typo in a key
  text: kpi instead of kpis.
  kpi: [nps]
- date: 2025-05-01
  title: ""
  text: Empty title.
- date: 2025-06-01
  title: Another good one
  text: Also fine.
  kpis: [nps]
""",
    "team_activity.csv": """date,kind,title
2025-01-09,event,Community call
2025-01-10,party,Not a kind
2025-01-11,talk,
2025-01-12,trip,Visit to a partner university,extra cell
2025-01-13,workshop,Workshop for newcomers
""",
}


@pytest.mark.parametrize(
    "source, landed, reasons",
    [
        (
            "survey",
            2,
            [
                "inputs/survey.csv:3: answered_at is not an ISO date (YYYY-MM-DD) or date-time",
                "inputs/survey.csv:4: score is not a whole number from 0 to 10",
                "inputs/survey.csv:5: score is not a whole number from 0 to 10",
                "inputs/survey.csv:6: duplicate response_id",
            ],
        ),
        (
            "feedback",
            4,  # FB-1: 3 events, FB-4: 1
            [
                "inputs/feedback.csv:3: acted_at is before received_at",
                "inputs/feedback.csv:4: channel must be a short label (lowercase letters, digits, - or _)",
                "inputs/feedback.csv:8: received_at is not an ISO date (YYYY-MM-DD) or date-time",
            ],
        ),
        (
            "learnings",
            2,
            [
                "inputs/learnings.yml:4: unknown key(s) kpi (allowed: date, kpis, tags, text, title)",
                "inputs/learnings.yml:8: title is empty",
            ],
        ),
        (
            "team",
            2,
            [
                "inputs/team_activity.csv:3: kind must be one of event, talk, post, trip, workshop, other",
                "inputs/team_activity.csv:4: title is empty",
                "inputs/team_activity.csv:5: more cells than columns",
            ],
        ),
    ],
)
def test_bad_rows_are_quarantined_with_file_and_line_and_good_rows_land(workdir, source, landed, reasons):
    cfg = setup_files(workdir, BAD)
    summary = run_extract(cfg, source, None, UNTIL)
    assert summary.landed == landed
    assert sorted(quarantine_reasons(cfg, source)) == sorted(reasons)
    # a reason never repeats the bad value, which could itself be personal data
    blob = b"".join(p.read_bytes() for p in Path(cfg.path("quarantine")).rglob("*.parquet"))
    for value in (b"Our Forum!", b"eleven", b"Typo in a key", b"Channel is free text", b"party"):
        assert value not in blob


def test_missing_column_rejects_the_file_and_missing_file_fails(workdir):
    cfg = setup_files(workdir, {**GOOD, "survey.csv": "response_id,when,score\nR1,2025-01-01,9\n"})
    summary = run_extract(cfg, "survey", None, UNTIL)
    assert summary.landed == 0
    assert quarantine_reasons(cfg, "survey") == ["inputs/survey.csv:1: missing column(s) answered_at; no row read"]
    (workdir / "inputs" / "team_activity.csv").unlink()
    with pytest.raises(FileNotFoundError, match="sources.team.path"):
        run_extract(cfg, "team", None, UNTIL)


def test_invalid_yaml_is_quarantined_with_its_line(workdir):
    cfg = setup_files(workdir, {**GOOD, "learnings.yml": "- date: 2025-01-01\n  title: [unclosed\n"})
    summary = run_extract(cfg, "learnings", None, UNTIL)
    assert summary.landed == 0
    [reason] = quarantine_reasons(cfg, "learnings")
    assert reason.startswith("inputs/learnings.yml:") and reason.endswith("not valid YAML; no entry read")
