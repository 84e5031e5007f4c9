"""How long each DAG file takes to parse, beyond Airflow's own import (issue 8: < 1 s each).

Every file is parsed in a fresh interpreter that first imports `airflow.sdk`,
`airflow.models` and the DagBag — what a DAG processor has already paid — so the number
is the file's own cost: its imports (Cosmos, agora) and building the DAG. Each file is
parsed `repeats` times in separate processes; the best and worst are reported.
Usage: `python -m bench.dag_parse [--repeats N]` (needs `make manifest` for Cosmos).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_SECONDS = 1.0

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk, airflow.models
from airflow.dag_processing.dagbag import DagBag
t1, c1 = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=sys.argv[1])
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"airflow_import": t1 - t0, "parse": t2 - t1, "parse_cpu": c2 - c1, "dags": sorted(bag.dags),
                  "errors": {k: str(v)[:300] for k, v in bag.import_errors.items()}}))
"""


def measure(repeats: int = 3) -> dict[str, dict]:
    """{dag file: {parse_best, parse_worst, parse_cpu_best, airflow_import_best, dags, errors, load_avg_1m}}."""
    home = tempfile.mkdtemp(prefix="agora-dag-parse-")
    env = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": os.path.join(home, "cosmos"),
        "PYTHONPATH": str(ROOT),
    }
    out = {}
    for f in sorted((ROOT / "dags").glob("*.py")):
        runs = []
        for _ in range(repeats):
            load = os.getloadavg()[0]
            res = subprocess.run(
                [sys.executable, "-c", PROBE, str(f)], env=env, capture_output=True, text=True, cwd=ROOT
            )
            if res.returncode != 0:
                raise RuntimeError(f"{f.name}: probe failed: {res.stderr[-2000:]}")
            runs.append({**json.loads(res.stdout.strip().splitlines()[-1]), "load": load})
        out[f.name] = {
            "parse_best": round(min(r["parse"] for r in runs), 3),
            "parse_worst": round(max(r["parse"] for r in runs), 3),
            # CPU seconds barely move with the load of other processes; wall time does.
            "parse_cpu_best": round(min(r["parse_cpu"] for r in runs), 3),
            "airflow_import_best": round(min(r["airflow_import"] for r in runs), 2),
            "dags": runs[0]["dags"],
            "errors": runs[0]["errors"],
            "load_avg_1m": round(max(r["load"] for r in runs), 2),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dag_parse", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.repeats)
    print("| DAG file | parse best (s) | parse worst (s) | parse CPU (s) | airflow import (s) | load avg | errors |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['parse_best']:.2f} | {r['parse_worst']:.2f} | {r['parse_cpu_best']:.2f} "
            f"| {r['airflow_import_best']:.2f} "
            f"| {r['load_avg_1m']:.2f} | {len(r['errors'])} |"
        )
    return 0 if all(r["parse_best"] < LIMIT_SECONDS and not r["errors"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
