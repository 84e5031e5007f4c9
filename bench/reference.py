"""The yardstick: one hand-written DuckDB query over the same landing files.

It computes what the headline marts compute for the community platform — monthly active
members, new members and month-1 cohort retention — with no staging, no dedup, no tests
and no writes: the fastest honest answer, which the full build is compared against.
"""

from __future__ import annotations

import time

REFERENCE_SQL = """
with posts as (
    select actor, date_trunc('month', occurred_at) as month
    from read_parquet('{glob}', union_by_name = true, hive_partitioning = true)
    where platform = 'discourse' and record_type in ('thread', 'reply')
        and actor is not null and not coalesce(is_bot, false) and not coalesce(is_staff, false)
),
active as (select distinct actor, month from posts),
firsts as (select actor, min(month) as first_month from active group by actor),
monthly as (select month, count(*) as active_members from active group by month),
cohorts as (
    select f.first_month as month, count(*) as new_members, count(a.actor) as retained_next_month
    from firsts as f
    left join active as a on a.actor = f.actor and a.month = f.first_month + interval 1 month
    group by f.first_month
)
select m.month, m.active_members, coalesce(c.new_members, 0) as new_members,
    c.retained_next_month / c.new_members as month1_retention
from monthly as m left join cohorts as c using (month)
order by m.month
"""


def run_reference(landing_root: str, repeats: int = 2) -> tuple[float, float, list[tuple]]:
    """Best wall time of `repeats` runs, the CPU seconds of that run, and the rows of the last one."""
    import duckdb

    sql = REFERENCE_SQL.format(glob=f"{landing_root}/*/dt=*/*.parquet".replace("'", "''"))
    best, best_cpu, rows = float("inf"), 0.0, []
    for _ in range(repeats):
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            started, cpu = time.perf_counter(), time.process_time()
            rows = con.execute(sql).fetchall()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            if wall < best:
                best, best_cpu = wall, cpu
        finally:
            con.close()
    return best, best_cpu, rows
