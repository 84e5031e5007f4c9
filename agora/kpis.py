"""The KPI registry: `dbt_project/seeds/kpi_definitions.csv`, one row per KPI.

A KPI is one model and one catalog row. The row is the `kpi_catalog` mart's source, orders
the CLI summary (`summary_order`) and the dashboard's headline cards (`headline_order`,
`headline_label`). Files that cannot read the CSV themselves get what they need written
into them by `python -m agora.kpis` (`make kpis`): the catalog table of docs/kpis.md and
the headline dataset's SQL (dashboards/assets/datasets/kpi_headlines.yaml).
`python -m agora.kpis --check` (tests/test_kpis.py) fails when one of them has drifted.
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "dbt_project" / "seeds" / "kpi_definitions.csv"
DOCS = Path("docs") / "kpis.md"
HEADLINES = Path("dashboards") / "assets" / "datasets" / "kpi_headlines.yaml"
#: The mart whose long format (month, platform, kpi, value) the headline SQL filters by KPI.
LONG_MART = "community_kpis_monthly"
BEGIN = "<!-- kpi-catalog: generated from dbt_project/seeds/kpi_definitions.csv by `python -m agora.kpis` -->"
END = "<!-- /kpi-catalog -->"


class RegistryError(ValueError):
    """The seed is inconsistent, or a generated file lost the block it is regenerated into."""


@dataclass(frozen=True)
class Kpi:
    kpi: str
    kind: str
    nature: str
    definition: str
    unit: str
    direction: str
    mart: str
    origin: str
    summary_order: int | None
    headline_order: int | None
    headline_label: str

    @property
    def card_unit(self) -> str:
        """How a headline card formats the value (the headline SQL's `unit`)."""
        if self.unit in ("share", "hours"):
            return self.unit
        return "points" if self.unit.startswith("score") else "count"


def _order(value: str) -> int | None:
    return int(value) if value.strip() else None


def read(seed: Path = SEED) -> tuple[Kpi, ...]:
    with seed.open(newline="") as f:
        rows = [
            Kpi(
                **{k: v for k, v in row.items() if not k.endswith("_order")},
                summary_order=_order(row["summary_order"]),
                headline_order=_order(row["headline_order"]),
            )
            for row in csv.DictReader(f)
        ]
    names = [k.kpi for k in rows]
    if len(set(names)) != len(names):
        raise RegistryError(f"{seed.name}: a KPI is listed twice: {sorted(n for n in names if names.count(n) > 1)}")
    for column in ("summary_order", "headline_order"):
        orders = sorted(getattr(k, column) for k in rows if getattr(k, column) is not None)
        if orders != list(range(1, len(orders) + 1)):
            raise RegistryError(f"{seed.name}: {column} must number 1..n without gaps or repeats, got {orders}")
    unlabelled = [k.kpi for k in rows if k.headline_order is not None and not k.headline_label]
    if unlabelled:
        raise RegistryError(f"{seed.name}: headline KPIs without headline_label: {unlabelled}")
    return tuple(rows)


@cache
def definitions() -> tuple[Kpi, ...]:
    return read()


def summary_order(kpis: tuple[Kpi, ...] | None = None) -> tuple[str, ...]:
    """KPIs the closing summary shows first, in reading order (the others follow by name)."""
    ranked = [k for k in kpis or definitions() if k.summary_order is not None]
    return tuple(k.kpi for k in sorted(ranked, key=lambda k: k.summary_order))


def headlines(kpis: tuple[Kpi, ...] | None = None) -> tuple[Kpi, ...]:
    """The dashboard's headline cards, in order."""
    ranked = [k for k in kpis or definitions() if k.headline_order is not None]
    return tuple(sorted(ranked, key=lambda k: k.headline_order))


# --------------------------------------------------------------------------- generated files


def catalog_table(kpis: tuple[Kpi, ...]) -> str:
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = [
        "| KPI | kind | nature | unit | direction | mart | origin | definition |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in kpis:
        cells = (f"`{k.kpi}`", k.kind, k.nature, k.unit or "—", k.direction, f"`{k.mart}`", k.origin, k.definition)
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(lines)


def docs_text(text: str, kpis: tuple[Kpi, ...]) -> str:
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise RegistryError(f"{DOCS}: the catalog markers are missing ({BEGIN} … {END})")
    return text[: start + len(BEGIN)] + "\n" + catalog_table(kpis) + "\n" + text[stop:]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_KPI_FILTER = re.compile(r"(\n(\s*)and kpi in \()[^)\n]*(\))")
_VALUES = re.compile(r"(headline \(position, kpi, label, unit\) as \(\n\s*values\n)(.*?)(\n\s*\),)", re.DOTALL)


def headline_text(text: str, kpis: tuple[Kpi, ...]) -> str:
    """The headline dataset with its KPI filter and card list rewritten from the registry."""
    cards = headlines(kpis)
    if not _KPI_FILTER.search(text) or not (values := _VALUES.search(text)):
        raise RegistryError(f"{HEADLINES}: no `and kpi in (…)` filter or `headline (…) as (values …)` list")
    from_long = ", ".join(_sql_text(k.kpi) for k in cards if k.mart == LONG_MART)
    text = _KPI_FILTER.sub(lambda m: m.group(1) + from_long + m.group(3), text, count=1)
    # A headline from another mart needs its own series branch (its grain, its value column).
    missing = [k.kpi for k in cards if k.mart != LONG_MART and f"select {_sql_text(k.kpi)} as kpi" not in text]
    if missing:
        raise RegistryError(f"{HEADLINES}: write a `select '<kpi>' as kpi, …` branch in `series` for {missing}")
    indent = re.match(r"\s*", values.group(2)).group(0)
    rows = ",\n".join(
        f"{indent}({k.headline_order}, {_sql_text(k.kpi)}, {_sql_text(k.headline_label)}, {_sql_text(k.card_unit)})"
        for k in cards
    )
    values = _VALUES.search(text)
    return text[: values.start(2)] + rows + text[values.end(2) :]


def generated(root: Path = ROOT, seed: Path = SEED) -> dict[Path, str]:
    """Every file derived from the registry, with the text it should have."""
    kpis = read(seed)
    return {
        root / DOCS: docs_text((root / DOCS).read_text(), kpis),
        root / HEADLINES: headline_text((root / HEADLINES).read_text(), kpis),
    }


def drifted(root: Path = ROOT, seed: Path = SEED) -> list[Path]:
    """Files whose derived part no longer matches the registry."""
    return [path for path, text in generated(root, seed).items() if path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--check"]):
        print("usage: python -m agora.kpis [--check]", file=sys.stderr)
        return 2
    if argv == ["--check"]:
        stale = drifted()
        for path in stale:
            print(f"{path.relative_to(ROOT)}: out of date with {SEED.relative_to(ROOT)}; run `python -m agora.kpis`")
        return 1 if stale else 0
    for path, text in generated().items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
