"""Synthetic community events written straight into the landing layout.

Vectorised with numpy/pyarrow so ten million events generate in tens of seconds: going
through `RawEvent` and `write_landing` (one Python dict per row) would take longer than
the build being measured. The files are what `agora extract` writes — envelope schema,
``<landing>/<source>/dt=YYYY-MM-DD/<run_id>.parquet``, one run per source and day,
64-hex pseudonyms — so the landing contract and dbt read them as real data.

The community (one member table per platform, fixed by the seed) is realistic enough to
load the models the way a real one does: power-law activity (Pareto weights), cohorts
that grow over time, many one-off newcomers and a long-lived core (churn), threads and
replies to recent threads, a few bots and staff accounts, several platforms, daily
support-page views and survey responses.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agora.envelope import ENVELOPE_SCHEMA, TEAM_SCHEMA
from agora.extract import make_run_id

DAY_S = 86_400
US = 1_000_000

# source name -> (platform, share of the community events)
COMMUNITY_SOURCES = {
    "forum": ("discourse", 0.60),
    "gh": ("github", 0.22),
    "so": ("stackexchange", 0.10),
    "toots": ("mastodon", 0.08),
}
SUPPORT_PAGES = 5
EVENTS_PER_MEMBER = 30  # average over three years: most members post a few times, a core posts thousands
THREAD_SHARE = 0.2
BOTS_PER_PLATFORM = 3
STAFF_PER_PLATFORM = 10


@dataclass
class Generated:
    """What a generation wrote: files and rows, for the bench report."""

    files: int = 0
    rows: int = 0
    community_events: int = 0
    first_day: str = ""
    last_day: str = ""
    paths: list[str] = field(default_factory=list)
    rows_by_day: dict[str, int] = field(default_factory=dict)


@dataclass
class _Members:
    join_s: np.ndarray  # seconds since epoch
    leave_s: np.ndarray
    weight: np.ndarray
    is_bot: np.ndarray
    is_staff: np.ndarray
    pseudonyms: pa.Array  # one 64-hex string per member


def _pseudonyms(platform: str, n: int, seed: int) -> pa.Array:
    """Stand-ins for HMAC pseudonyms: 64 lowercase hex, stable per (seed, platform, member)."""
    salt = f"bench:{seed}:{platform}:".encode()
    return pa.array([hashlib.sha256(salt + str(i).encode()).hexdigest() for i in range(n)], pa.string())


def _members(platform: str, n_members: int, start_s: int, end_s: int, seed: int) -> _Members:
    """One platform's population, fixed by the seed so history and the added day agree."""
    rng = np.random.default_rng([seed, zlib.crc32(platform.encode())])
    span = end_s - start_s
    # Cohorts grow: join dates skewed towards the end (density ~ t^0.6).
    join = start_s + (span * rng.random(n_members) ** (1 / 1.6)).astype(np.int64)
    # Churn: 60 % try once or twice within days, the rest stay for months or years.
    one_off = rng.random(n_members) < 0.6
    life_days = np.where(one_off, rng.exponential(4, n_members), rng.exponential(400, n_members))
    leave = join + (life_days * DAY_S).astype(np.int64) + 3600
    weight = rng.pareto(1.3, n_members) + 1.0  # power-law activity
    is_bot = np.zeros(n_members, bool)
    is_staff = np.zeros(n_members, bool)
    # The first accounts are bots and staff: there from the start to the end, busy.
    special = BOTS_PER_PLATFORM + STAFF_PER_PLATFORM
    join[:special] = start_s
    leave[:special] = end_s + 10 * DAY_S
    is_bot[:BOTS_PER_PLATFORM] = True
    is_staff[BOTS_PER_PLATFORM:special] = True
    weight[:BOTS_PER_PLATFORM] = 0.02 * n_members
    weight[BOTS_PER_PLATFORM:special] = 0.01 * n_members
    return _Members(join, leave, weight, is_bot, is_staff, _pseudonyms(platform, n_members, seed))


def _activity(m: _Members, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
    """Each member's start within [t0, t1) and seconds active there."""
    lo = np.maximum(m.join_s, t0)
    return lo, np.clip(np.minimum(m.leave_s, t1) - lo, 0, None).astype(np.float64)


#: Most community events one table holds. A source's events beyond it are drawn window by
#: window (whole days, counts in proportion to the members' activity there), so memory stays
#: ~2 GB per window: 100 M events in one table held ~12 GB of strings.
WINDOW_EVENTS = 10_000_000


def _community_tables(
    rng: np.random.Generator, m: _Members, source: str, platform: str, n: int, t0: int, t1: int, id_prefix: str
) -> Iterator[pa.Table]:
    """`n` events between t0 and t1 as one table, or as consecutive day-aligned windows when n is large."""
    windows = -(-n // WINDOW_EVENTS)
    if windows <= 1:
        # No multinomial draw: the random stream, and so the data, of smaller benches stays as before.
        yield _community_table(rng, m, source, platform, n, t0, t1, id_prefix)
        return
    days = (t1 - t0) // DAY_S
    spans = list(pairwise([t0 + (days * k // windows) * DAY_S for k in range(windows)] + [t1]))
    mass = np.array([(m.weight * _activity(m, a, b)[1]).sum() for a, b in spans])
    counts = rng.multinomial(n, mass / mass.sum())
    offset = 0
    for (a, b), k in zip(spans, counts, strict=True):
        if k:
            yield _community_table(rng, m, source, platform, int(k), a, b, id_prefix, offset)
            offset += int(k)


def _community_table(
    rng: np.random.Generator,
    m: _Members,
    source: str,
    platform: str,
    n: int,
    t0: int,
    t1: int,
    id_prefix: str,
    offset: int = 0,
) -> pa.Table:
    """`n` threads and replies between t0 and t1 (seconds), from members active then; ids from `offset`."""
    lo, overlap = _activity(m, t0, t1)
    p = m.weight * overlap
    p /= p.sum()
    who = rng.choice(len(p), size=n, p=p)
    at = lo[who] + (rng.random(n) * overlap[who]).astype(np.int64)
    order = np.argsort(at, kind="stable")
    who, at = who[order], at[order]

    is_thread = rng.random(n) < THREAD_SHARE
    is_thread[0] = True
    thread_pos = np.flatnonzero(is_thread)
    # A reply answers one of the most recent threads (geometric back-off), so most
    # threads get answers within hours and a tail waits or never gets one.
    last = np.searchsorted(thread_pos, np.arange(n), side="right") - 1
    back = rng.geometric(0.02, n) - 1
    target = thread_pos[np.clip(last - back, 0, None)]
    target = np.where(is_thread, np.arange(n), target)

    ids = pc.binary_join_element_wise(
        pa.scalar(id_prefix), pc.cast(pa.array(np.arange(offset, offset + n)), pa.string()), ""
    )
    thread_ids = _take(ids, target)
    actors = _take(m.pseudonyms, who)
    none_str = pa.nulls(n, pa.string())
    day_end_s = (at // DAY_S + 1) * DAY_S
    return pa.table(
        {
            "source": pa.repeat(source, n),
            "platform": pa.repeat(platform, n),
            "record_type": pa.array(np.where(is_thread, "thread", "reply")),
            "record_id": ids,
            "thread_id": thread_ids,
            "parent_id": pc.if_else(pa.array(is_thread), none_str, thread_ids),
            "actor": actors,
            "parent_actor": pc.if_else(pa.array(is_thread), none_str, _take(m.pseudonyms, who[target])),
            "occurred_at": pa.array(at * US, pa.timestamp("us", tz="UTC")),
            "is_bot": pa.array(m.is_bot[who]),
            "is_staff": pa.array(m.is_staff[who]),
            "value": pa.nulls(n, pa.float64()),
            "tags": _empty_lists(n),
            # Extracted by the daily run an hour after the day closed.
            "extracted_at": pa.array((day_end_s + 3600) * US, pa.timestamp("us", tz="UTC")),
            "run_id": pa.repeat("", n),
            "connector_version": pa.repeat("bench", n),
        },
        schema=ENVELOPE_SCHEMA,
    )


#: Rows per chunk of a gathered string column: 4 M pseudonyms are 256 MB of characters.
TAKE_CHUNK = 1 << 22


def _take(values: pa.Array, indices: np.ndarray) -> pa.ChunkedArray:
    """`values[indices]` as a chunked column. One string array addresses its characters with
    32-bit offsets (2 GB): 100 M pseudonyms are 6.4 GB, which a single `take` overflows
    ("Take operation overflowed binary array capacity")."""
    chunks = [values.take(pa.array(indices[i : i + TAKE_CHUNK])) for i in range(0, len(indices), TAKE_CHUNK)]
    return pa.chunked_array(chunks or [values.take(pa.array(indices))], type=values.type)


def _empty_lists(n: int) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()))


def _pageviews(rng: np.random.Generator, first_day: int, days: int) -> pa.Table:
    day = np.repeat(np.arange(first_day, first_day + days), SUPPORT_PAGES)
    page = np.tile(np.arange(SUPPORT_PAGES), days)
    n = len(day)
    ids = pc.binary_join_element_wise(pc.cast(pa.array(page), pa.string()), pc.cast(pa.array(day), pa.string()), ":")
    return pa.table(
        {
            "source": pa.repeat("meta", n),
            "platform": pa.repeat("mediawiki", n),
            "record_type": pa.repeat("pageviews", n),
            "record_id": ids,
            "thread_id": pa.nulls(n, pa.string()),
            "parent_id": pa.nulls(n, pa.string()),
            "actor": pa.nulls(n, pa.string()),
            "parent_actor": pa.nulls(n, pa.string()),
            "occurred_at": pa.array(day * DAY_S * US, pa.timestamp("us", tz="UTC")),
            "is_bot": pa.repeat(False, n),
            "is_staff": pa.repeat(False, n),
            "value": pa.array(rng.poisson(120, n).astype(np.float64)),
            "tags": _empty_lists(n),
            "extracted_at": pa.array(((day + 1) * DAY_S + 3600) * US, pa.timestamp("us", tz="UTC")),
            "run_id": pa.repeat("", n),
            "connector_version": pa.repeat("bench", n),
        },
        schema=ENVELOPE_SCHEMA,
    )


def _survey(rng: np.random.Generator, t0: int, t1: int) -> pa.Table:
    n = max(1, (t1 - t0) // (2 * DAY_S))
    at = np.sort(rng.integers(t0, t1, n))
    ids = pc.binary_join_element_wise(pa.scalar("r"), pc.cast(pa.array(at), pa.string()), "")
    day_end_s = (at // DAY_S + 1) * DAY_S
    return pa.table(
        {
            "source": pa.repeat("survey", n),
            "platform": pa.repeat("survey", n),
            "record_type": pa.repeat("survey_response", n),
            "record_id": ids,
            "thread_id": pa.nulls(n, pa.string()),
            "parent_id": pa.nulls(n, pa.string()),
            "actor": pa.nulls(n, pa.string()),
            "parent_actor": pa.nulls(n, pa.string()),
            "occurred_at": pa.array(at * US, pa.timestamp("us", tz="UTC")),
            "is_bot": pa.repeat(False, n),
            "is_staff": pa.repeat(False, n),
            "value": pa.array(rng.choice(11, n, p=_NPS_P).astype(np.float64)),
            "tags": _empty_lists(n),
            "extracted_at": pa.array((day_end_s + 3600) * US, pa.timestamp("us", tz="UTC")),
            "run_id": pa.repeat("", n),
            "connector_version": pa.repeat("bench", n),
            "title": pa.nulls(n, pa.string()),
            "text": pa.nulls(n, pa.string()),
        },
        schema=TEAM_SCHEMA,
    )


_NPS_P = np.array([2, 1, 1, 2, 2, 4, 6, 12, 20, 25, 25], float) / 100


def _write_by_day(
    table: pa.Table, landing_root: str, source: str, pool: ThreadPoolExecutor, rows_by_day: dict[str, int]
) -> list[str]:
    """One file per UTC day, named by that day's extraction window (as `agora extract` names it)."""
    at = pc.cast(table.column("occurred_at"), pa.int64()).to_numpy()
    days = at // (DAY_S * US)
    order = np.argsort(at, kind="stable")
    if not np.all(order[:-1] <= order[1:]):
        table, days = table.take(pa.array(order)), days[order]
    bounds = np.flatnonzero(np.diff(days)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(days)]])
    jobs = []
    for s, e in zip(starts, ends, strict=True):
        day = date(1970, 1, 1) + timedelta(days=int(days[s]))
        rows_by_day[day.isoformat()] = rows_by_day.get(day.isoformat(), 0) + int(e - s)
        since = datetime(day.year, day.month, day.day, tzinfo=UTC)
        run_id = make_run_id(since, since + timedelta(days=1))
        part = table.slice(s, e - s)
        part = part.set_column(part.schema.get_field_index("run_id"), "run_id", pa.repeat(run_id, e - s))
        path = os.path.join(landing_root, source, f"dt={day.isoformat()}", f"{run_id}.parquet")
        jobs.append(pool.submit(_write, part, path))
    return [j.result() for j in jobs]


def _write(table: pa.Table, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


def _window(end_day: date, days: int) -> tuple[int, int]:
    end_s = int(datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC).timestamp())
    return end_s - days * DAY_S, end_s


def generate(
    landing_root: str, events: int, *, end_day: date, days: int = 1095, seed: int = 7, added_days: int = 1
) -> Generated:
    """Write `events` community events over the `days` before `end_day` (exclusive).

    The population lives on `added_days` past `end_day`, so `generate_day` can add those
    days from the same members.
    """
    start_s, end_s = _window(end_day, days)
    population = (events, start_s, end_s + added_days * DAY_S, seed)
    return _generate(landing_root, events, start_s, end_s, population, np.random.default_rng(seed), "h")


def generate_day(
    landing_root: str, events: int, *, history_events: int, day: date, days: int = 1095, seed: int = 7
) -> Generated:
    """Write one more day (`day`) from the community `generate(history_events, end_day=day)` wrote."""
    start_s, end_s = _window(day, days)
    population = (history_events, start_s, end_s + DAY_S, seed)
    rng = np.random.default_rng([seed, day.toordinal()])
    return _generate(landing_root, events, end_s, end_s + DAY_S, population, rng, f"d{day:%Y%m%d}-")


def _generate(
    landing_root: str,
    events: int,
    t0: int,
    t1: int,
    population: tuple[int, int, int, int],
    rng: np.random.Generator,
    id_prefix: str,
) -> Generated:
    history_events, pop_start, pop_end, seed = population
    out = Generated(community_events=events)
    members_total = max(50 * len(COMMUNITY_SOURCES), history_events // EVENTS_PER_MEMBER)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for source, (platform, share) in COMMUNITY_SOURCES.items():
            n = max(1, round(events * share))
            members = _members(platform, max(50, round(members_total * share)), pop_start, pop_end, seed)
            for table in _community_tables(rng, members, source, platform, n, t0, t1, f"{id_prefix}{source}"):
                out.paths += _write_by_day(table, landing_root, source, pool, out.rows_by_day)
                out.rows += table.num_rows
        pv = _pageviews(rng, t0 // DAY_S, (t1 - t0) // DAY_S)
        out.paths += _write_by_day(pv, landing_root, "meta", pool, out.rows_by_day)
        sv = _survey(rng, t0, t1)
        out.paths += _write_by_day(sv, landing_root, "survey", pool, out.rows_by_day)
        out.rows += pv.num_rows + sv.num_rows
    out.files = len(out.paths)
    out.first_day = (date(1970, 1, 1) + timedelta(days=t0 // DAY_S)).isoformat()
    out.last_day = (date(1970, 1, 1) + timedelta(days=(t1 - 1) // DAY_S)).isoformat()
    return out
