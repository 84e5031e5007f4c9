"""The KPI registry (dbt_project/seeds/kpi_definitions.csv) and what is derived from it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from agora import kpis
from agora.kpis import DOCS, HEADLINES, ROOT, SEED, RegistryError, drifted, generated, read
from tests.test_incremental import INTERMEDIATES

MARTS = ROOT / "dbt_project" / "models" / "marts"


def test_docs_and_dashboard_match_the_registry():
    stale = drifted()
    assert not stale, f"{[str(p.relative_to(ROOT)) for p in stale]} out of date: run `python -m agora.kpis`"
    assert kpis.main(["--check"]) == 0


def test_every_kpi_names_a_mart_model():
    missing = {k.kpi: k.mart for k in read() if not (MARTS / f"{k.mart}.sql").exists()}
    assert not missing, f"KPIs whose mart is not a model in {MARTS.relative_to(ROOT)}: {missing}"


def test_orders_come_from_the_registry():
    assert kpis.summary_order()[:2] == ("active_members", "new_members")
    cards = kpis.headlines()
    assert [k.headline_order for k in cards] == list(range(1, len(cards) + 1))
    assert {k.kpi: k.card_unit for k in cards}["nps"] == "points"
    # The docs name every KPI of the registry, the three once missing included.
    docs = (ROOT / DOCS).read_text()
    assert all(f"| `{k.kpi}` |" in docs for k in read())
    assert {"feedback_received", "feedback_acted_on", "team_activities"} <= {k.kpi for k in read()}


def test_incremental_test_list_is_read_from_the_models():
    assert "int_kpis_activity_monthly" in INTERMEDIATES
    assert "int_posts_unioned" not in INTERMEDIATES  # a view


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    for rel in (DOCS, HEADLINES):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    seed = tmp_path / "kpi_definitions.csv"
    shutil.copy(SEED, seed)
    return tmp_path, seed


def _edit_seed(seed: Path, change) -> None:
    with seed.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    change(rows)
    with seed.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_a_new_headline_kpi_reaches_docs_and_cards(tmp_path):
    root, seed = _copy(tmp_path)
    assert drifted(root, seed) == []

    def add(rows):
        new = dict(rows[0], kpi="answered_threads", definition="Threads | answered.", unit="threads")
        rows.append(new | {"summary_order": "", "headline_order": "7", "headline_label": "Answered threads"})

    _edit_seed(seed, add)
    assert drifted(root, seed) == [root / DOCS, root / HEADLINES]
    texts = generated(root, seed)
    assert "| `answered_threads` | activity |" in texts[root / DOCS]
    assert "Threads \\| answered." in texts[root / DOCS]
    sql = texts[root / HEADLINES]
    assert "'median_hours_to_first_response', 'answered_threads')" in sql
    assert "(7, 'answered_threads', 'Answered threads', 'count')" in sql


def test_a_headline_from_another_mart_needs_its_series_branch(tmp_path):
    root, seed = _copy(tmp_path)
    _edit_seed(seed, lambda rows: rows[-1].update(headline_order="7", headline_label="Learnings"))
    with pytest.raises(RegistryError, match="learnings"):
        generated(root, seed)


def test_broken_orders_are_refused(tmp_path):
    _, seed = _copy(tmp_path)
    _edit_seed(seed, lambda rows: rows[0].update(summary_order="1"))  # active_members is 1 too
    with pytest.raises(RegistryError, match="summary_order"):
        read(seed)
