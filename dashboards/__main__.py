"""``python -m dashboards`` (in Superset's venv; run.sh calls it).

    build  --serving PATH --out ZIP           write the import bundle
    import --serving PATH --url URL           build and import it over the REST API
    check                                     check the assets' consistency (no Superset needed)

Credentials come from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from dashboards.bundle import AssetError, build_bundle, check_assets, load_assets

DASHBOARD_SLUG = "community-health"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the import bundle")
    build.add_argument("--serving", type=Path, required=True)
    build.add_argument("--out", type=Path, required=True)
    imp = sub.add_parser("import", help="build the bundle and import it into a running Superset")
    imp.add_argument("--serving", type=Path, required=True)
    imp.add_argument("--url", default="http://127.0.0.1:8088")
    sub.add_parser("check", help="check the assets' consistency")
    args = parser.parse_args(argv)

    if args.command == "check":
        problems = check_assets(load_assets())
        for p in problems:
            print(f"problem: {p}", file=sys.stderr)
        return 1 if problems else 0
    try:
        if args.command == "build":
            print(build_bundle(args.serving, args.out))
            return 0
        return _import(args.serving, args.url)
    except AssetError as e:
        print(f"assets: {e}", file=sys.stderr)
        return 1


def _import(serving: Path, url: str) -> int:
    from dashboards.client import SupersetApi, SupersetError

    if not serving.exists():
        # Superset only opens the file when a chart runs: importing first is fine.
        print(f"note: {serving} does not exist yet; charts will error until the pipeline publishes it")
    start = time.monotonic()
    try:
        api = SupersetApi(url, os.environ.get("SUPERSET_ADMIN_USER", "admin"), os.environ["SUPERSET_ADMIN_PASSWORD"])
        with tempfile.TemporaryDirectory() as tmp:
            api.import_bundle(build_bundle(serving, Path(tmp) / "agora_assets.zip"))
        dashboard = api.dashboard(DASHBOARD_SLUG)
    except SupersetError as e:
        print(f"import failed: {e}", file=sys.stderr)
        return 1
    print(
        f"imported in {time.monotonic() - start:.1f} s: {dashboard['title']!r} -> {url}/superset/dashboard/{DASHBOARD_SLUG}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
