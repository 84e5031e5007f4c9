"""`python -m bench --events N`: the benchmark of issue 8 (what `make bench` runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from bench.run import format_report, run_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000, help="community events in the history")
    parser.add_argument("--days", type=int, default=1095, help="days of history (default: three years)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default="data/bench", help="wiped and rebuilt on every run")
    parser.add_argument("--keep", action="store_true", help="keep the landing files afterwards")
    parser.add_argument(
        "--target",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="spark: also build the same landing on Spark (full and added day), reported beside DuckDB",
    )
    parser.add_argument(
        "--landing",
        choices=("local", "s3"),
        default="local",
        help="s3: also run every path with landing/state/quarantine in an S3 bucket (the AWS_* store, "
        "else a moto server on 127.0.0.1), reported beside local disk",
    )
    parser.add_argument(
        "--bucket", default="agora-bench", help="the bucket for --landing s3 (must exist on an AWS_* store)"
    )
    parser.add_argument(
        "--no-airflow", action="store_true", help="skip the production path (the transform DAG through Airflow)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target of issue 8 is missed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = run_bench(
        args.events,
        args.workdir,
        days=args.days,
        seed=args.seed,
        keep=args.keep,
        spark=args.target == "spark",
        production=not args.no_airflow and args.target != "spark",
        landing_s3=args.landing == "s3",
        bucket=args.bucket,
    )
    print()
    print(format_report(report))
    return 1 if args.check and not all(report.summary["targets"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
