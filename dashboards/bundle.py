"""Turn the assets kept in `dashboards/assets/` into a Superset import bundle (zip).

The YAML files are Superset's own export format, so a chart edited in the UI can be
exported and diffed against them. Two things are ours:

* the database's ``sqlalchemy_uri`` is set here, from the serving file's real path
  (read-only), so the checked-in YAML holds no machine-specific path;
* a dashboard's ``layout`` (tabs > rows > items) is expanded into Superset's verbose
  ``position`` tree, which is unpleasant to write or review by hand.

The example queries in ``docs/analyst-queries.md`` become SQL Lab saved queries,
so the documentation and what analysts find in Superset cannot drift apart.

Every chart also gets its saved ``query_context`` (what Superset's browser client would
store on "Save"): without it the chart-data API (`GET /api/v1/chart/{id}/data/`), and so
CSV export, alerts & reports and embedding, answers HTTP 400. Superset's import points
its datasource at the imported dataset.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import yaml

ASSETS = Path(__file__).resolve().parent / "assets"
ANALYST_QUERIES = Path(__file__).resolve().parents[1] / "docs" / "analyst-queries.md"
BUNDLE_ROOT = "agora_assets"
# Stable ids for generated objects (saved queries, layout nodes): re-imports update in place.
NAMESPACE = uuid.UUID("6f1c1e0e-5a7b-4c1d-9a63-0a90a4a00000")
GRID_COLUMNS = 12


class AssetError(ValueError):
    """The assets are inconsistent (dangling uuid, chart not placed, bad layout)."""


def serving_uri(serving_path: Path) -> str:
    """SQLAlchemy URI that opens the serving file read-only (several readers, no lock)."""
    return f"duckdb:///{Path(serving_path).resolve()}?access_mode=read_only"


def load_assets(assets_dir: Path = ASSETS) -> dict[str, dict[str, Any]]:
    """Every YAML asset by kind/file name, e.g. ``charts/feedback_loop.yaml``."""
    out: dict[str, dict[str, Any]] = {}
    for kind in ("databases", "datasets", "charts", "dashboards"):
        for path in sorted((assets_dir / kind).glob("*.yaml")):
            out[f"{kind}/{path.name}"] = yaml.safe_load(path.read_text())
    return out


def _node_id(kind: str, *parts: object) -> str:
    return f"{kind}-" + uuid.uuid5(NAMESPACE, "/".join(map(str, parts))).hex[:10]


def expand_layout(dashboard: dict[str, Any], charts_by_name: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Superset's ``position`` tree from the compact ``layout`` (one TABS level, rows of items)."""
    slug = dashboard["slug"]
    tabs_id = _node_id("TABS", slug)
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"children": [tabs_id], "id": "ROOT_ID", "type": "ROOT"},
        "GRID_ID": {"children": [], "id": "GRID_ID", "parents": ["ROOT_ID"], "type": "GRID"},
        "HEADER_ID": {"id": "HEADER_ID", "meta": {"text": dashboard["dashboard_title"]}, "type": "HEADER"},
        tabs_id: {"children": [], "id": tabs_id, "meta": {}, "parents": ["ROOT_ID"], "type": "TABS"},
    }
    for t, tab in enumerate(dashboard["layout"]):
        tab_id = _node_id("TAB", slug, t)
        position[tabs_id]["children"].append(tab_id)
        position[tab_id] = {
            "children": [],
            "id": tab_id,
            "meta": {"text": tab["tab"], "defaultText": "Tab title", "placeholder": "Tab title"},
            "parents": ["ROOT_ID", tabs_id],
            "type": "TAB",
        }
        for r, row in enumerate(tab["rows"]):
            row_id = _node_id("ROW", slug, t, r)
            parents = ["ROOT_ID", tabs_id, tab_id, row_id]
            position[tab_id]["children"].append(row_id)
            position[row_id] = {
                "children": [],
                "id": row_id,
                "meta": {"background": "BACKGROUND_TRANSPARENT"},
                "parents": parents[:-1],
                "type": "ROW",
            }
            if sum(item["width"] for item in row) > GRID_COLUMNS:
                raise AssetError(f"{slug}: row {r + 1} of tab {tab['tab']!r} is wider than {GRID_COLUMNS} columns")
            for i, item in enumerate(row):
                size = {"width": item["width"], "height": item["height"]}
                if "chart" in item:
                    chart = charts_by_name.get(item["chart"])
                    if chart is None:
                        raise AssetError(f"{slug}: layout names unknown chart {item['chart']!r}")
                    node_id = _node_id("CHART", slug, chart["uuid"])
                    meta = {"chartId": 0, "sliceName": chart["slice_name"], "uuid": chart["uuid"], **size}
                    node = {"children": [], "id": node_id, "meta": meta, "parents": parents, "type": "CHART"}
                else:
                    node_id = _node_id("MARKDOWN", slug, t, r, i)
                    meta = {"code": item["markdown"], **size}
                    node = {"children": [], "id": node_id, "meta": meta, "parents": parents, "type": "MARKDOWN"}
                position[row_id]["children"].append(node_id)
                position[node_id] = node
    return position


def analyst_queries(path: Path = ANALYST_QUERIES) -> list[dict[str, str]]:
    """The documented example queries: each ``### title``, its first paragraph, its ```sql block."""
    if not path.exists():
        return []
    pattern = re.compile(
        r"^### (?P<label>[^\n]+)\n\n(?P<description>(?:[^`\n][^\n]*\n)+)\n```sql\n(?P<sql>.*?)^```", re.M | re.S
    )
    return [
        {"label": m["label"].strip(), "description": " ".join(m["description"].split()), "sql": m["sql"].strip() + "\n"}
        for m in pattern.finditer(path.read_text())
    ]


def _where(filters: list[dict[str, Any]]) -> str:
    return " AND ".join(f"({f['sqlExpression']})" for f in filters if f.get("expressionType") == "SQL")


def _query(params: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    """One query object, built from the chart's form data as Superset's own client builds it."""
    metrics = list(params.get(f"metrics{suffix}", []))
    if "metric" in params:
        metrics.append(params["metric"])
    groupby = params.get(f"groupby{suffix}", [])
    groupby = [groupby] if isinstance(groupby, str) else list(groupby)
    columns: list[Any] = []
    extras: dict[str, Any] = {"having": "", "where": _where(params.get(f"adhoc_filters{suffix}", []))}
    if params.get("query_mode") == "raw":
        columns = list(params.get("all_columns", []))
        orderby = [list(json.loads(o)) for o in params.get("order_by_cols", [])]
    else:
        x_axis = params.get("x_axis")
        if x_axis and params.get("time_grain_sqla"):
            extras["time_grain_sqla"] = params["time_grain_sqla"]
            columns.append(
                {
                    "columnType": "BASE_AXIS",
                    "sqlExpression": x_axis,
                    "label": x_axis,
                    "expressionType": "SQL",
                    "timeGrain": params["time_grain_sqla"],
                }
            )
        elif x_axis:
            columns.append(x_axis)
        columns += groupby
        orderby = [[metrics[0], False]] if metrics else []
    return {
        "filters": [],
        "extras": extras,
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby,
        "annotation_layers": [],
        "row_limit": params.get(f"row_limit{suffix}", params.get("row_limit", 10000)),
        "series_limit": 0,
        "order_desc": True,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }


def query_context(chart: dict[str, Any]) -> str:
    """The saved query context of a chart (JSON text, as Superset stores it)."""
    params = chart["params"]
    queries = [_query(params)]
    if chart["viz_type"] == "mixed_timeseries":
        queries.append(_query(params, "_b"))
    return json.dumps(
        {
            "datasource": {"id": 0, "type": "table"},  # set to the imported dataset by Superset's import
            "force": False,
            "queries": queries,
            "form_data": params,
            "result_format": "json",
            "result_type": "full",
        }
    )


def check_assets(assets: dict[str, dict[str, Any]]) -> list[str]:
    """Consistency problems a Superset import would report late or not at all."""
    problems: list[str] = []
    databases = {a["uuid"] for name, a in assets.items() if name.startswith("databases/")}
    datasets = {a["uuid"]: a for name, a in assets.items() if name.startswith("datasets/")}
    charts = {a["slice_name"]: a for name, a in assets.items() if name.startswith("charts/")}
    uuids = [a["uuid"] for a in assets.values()]
    if len(uuids) != len(set(uuids)):
        problems.append("duplicate uuid among assets")
    for ds in datasets.values():
        if ds["database_uuid"] not in databases:
            problems.append(f"dataset {ds['table_name']}: unknown database {ds['database_uuid']}")
        if not ds.get("columns"):
            problems.append(
                f"dataset {ds['table_name']}: columns must be listed (Superset cannot infer them on import)"
            )
    for chart in charts.values():
        ds = datasets.get(chart["dataset_uuid"])
        if ds is None:
            problems.append(f"chart {chart['slice_name']}: unknown dataset {chart['dataset_uuid']}")
            continue
        params = chart["params"]
        if params.get("viz_type") != chart["viz_type"]:
            problems.append(f"chart {chart['slice_name']}: params.viz_type differs from viz_type")
        metric_names = {m["metric_name"] for m in ds.get("metrics", [])}
        column_names = {c["column_name"] for c in ds.get("columns", [])}
        used_metrics = [*params.get("metrics", []), *params.get("metrics_b", [])]
        used_metrics += [params["metric"]] if "metric" in params else []
        for metric in used_metrics:
            if isinstance(metric, str) and metric not in metric_names:
                problems.append(f"chart {chart['slice_name']}: metric {metric!r} not in dataset {ds['table_name']}")
        groupby = params.get("groupby", [])
        used_columns = [*([groupby] if isinstance(groupby, str) else groupby), *params.get("all_columns", [])]
        used_columns += [params["x_axis"]] if "x_axis" in params else []
        for column in used_columns:
            if column not in column_names:
                problems.append(f"chart {chart['slice_name']}: column {column!r} not in dataset {ds['table_name']}")
    placed: list[str] = []
    for name, dash in assets.items():
        if not name.startswith("dashboards/"):
            continue
        try:
            position = expand_layout(dash, charts)
        except AssetError as e:
            problems.append(str(e))
            continue
        placed += [
            n["meta"]["sliceName"] for n in position.values() if isinstance(n, dict) and n.get("type") == "CHART"
        ]
    for slice_name in charts:
        if placed.count(slice_name) != 1:
            problems.append(f"chart {slice_name}: placed {placed.count(slice_name)} times on dashboards (want 1)")
    return problems


def build_bundle(serving_path: Path, out_zip: Path, assets_dir: Path = ASSETS) -> Path:
    """Write the import zip for ``POST /api/v1/assets/import/`` and return its path."""
    assets = load_assets(assets_dir)
    problems = check_assets(assets)
    if problems:
        raise AssetError("; ".join(problems))
    charts = {a["slice_name"]: a for n, a in assets.items() if n.startswith("charts/")}
    databases = [a for n, a in assets.items() if n.startswith("databases/")]
    files: dict[str, dict[str, Any]] = {
        "metadata.yaml": {
            "version": "1.0.0",
            "type": "assets",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    }
    for name, asset in assets.items():
        asset = dict(asset)
        if name.startswith("databases/"):
            asset["sqlalchemy_uri"] = serving_uri(serving_path)
        elif name.startswith("datasets/"):
            db_name = next(d["database_name"] for d in databases if d["uuid"] == asset["database_uuid"])
            name = f"datasets/{_safe(db_name)}/{Path(name).name}"
        elif name.startswith("charts/"):
            asset["query_context"] = query_context(asset)
        elif name.startswith("dashboards/"):
            asset["position"] = expand_layout(asset, charts)
            del asset["layout"]
        files[name] = asset
    serving_db = databases[0]
    for query in analyst_queries():
        files[f"queries/{_safe(serving_db['database_name'])}/{_safe(query['label'])}.yaml"] = {
            "label": query["label"],
            "description": query["description"],
            "sql": query["sql"],
            "schema": "marts",
            "catalog": None,
            "uuid": str(uuid.uuid5(NAMESPACE, "query:" + query["label"])),
            "version": "1.0.0",
            "database_uuid": serving_db["uuid"],
        }
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(f"{BUNDLE_ROOT}/{name}", yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
    return out_zip


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
