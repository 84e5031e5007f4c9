"""What the landing contract checks: the envelope's columns and the row rules, as SQL.

Two suites run in a throwaway in-memory DuckDB database (nothing is written to the warehouse):

1. ``landing_file_columns`` — one row per (file, column), read from Parquet footers. A
   file must hold exactly the envelope columns with their types; ``title``/``text`` only
   when every row of the file comes from a team platform. Files failing this are left
   out of step 2, so one malformed file cannot break the checks of the others.
2. ``landing`` — the remaining files read once into one narrow table: per row its file,
   key, ``extracted_at``, a hash of the key, and one flag per row rule, computed while
   loading (a table rather than a view because a dozen checks would otherwise each
   re-open every file; flags rather than copied columns because the pseudonym columns
   are the widest and their test the costliest): pseudonyms are 64 lowercase hex or
   null, required fields present, ``occurred_at`` not in the future, known platform and
   record type, no ``actor`` or ``parent_actor`` on the tombstone list (new or changed
   files only: an opted-out account's old rows stay in files nobody rewrote), and
   team-written text (team files only) free of e-mail addresses, phone numbers and
   @handles. Each rule is still its own GX expectation, selecting its
   flagged rows. The key checks look only at keys whose hash is repeated, comparing the
   real keys there.

Uniqueness: ``(source, record_type, record_id)`` must be unique within a file. Across
files a key may repeat — a rerun of an overlapping window legitimately lands a record
again — because staging keeps the copy with the latest ``extracted_at``; the contract
therefore fails only when that latest copy is ambiguous (two files tie on it). Why
comparing the new files with the already-validated files of the *same* ``dt``
partitions is enough: a file's ``dt`` is the UTC day of its records' ``occurred_at``,
and every copy of a record carries the record's ``occurred_at``, so copies land in the
same partition. A tie needs equal ``extracted_at``, which one extraction run sets for
all its rows, and a run's files are all new together, so even a record whose
``occurred_at`` moved between two days within one run is seen among the new files.
Old-against-old ties were ruled out when those files passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from agora.config import PLATFORMS
from agora.envelope import ENVELOPE_SCHEMA, RECORD_TYPES, TEAM_TEXT_FIELDS

# SQL in this package (noqa: S608) is assembled from module constants and quoted file
# paths, never from values read out of the data.

# Clocks of the APIs and of this machine differ a little; more than this is a bug.
FUTURE_TOLERANCE = "INTERVAL 10 MINUTE"
SAMPLE_IDS = 5  # record ids named per offending file (never actors or text)

# Personal data a person may type into a team log. Deliberately broad: a false positive
# quarantines a team file that the team can fix; a false negative publishes an address.
EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# International (+33 6 12 34 56 78, 0044 20 ...), 10-digit national (06 12 34 56 78),
# North American (555-123-4567, (555) 123-4567). Dates such as 2024-05-01 do not match.
PHONE_RE = (
    r"(\+|\b00)\d[\d ()./-]{6,}\d"
    r"|\b0\d([ .-]?\d{2}){4}\b"
    r"|(\(\d{3}\)|\b\d{3})[ .-]?\d{3}[ .-]\d{4}\b"
)
HANDLE_RE = r"(^|[^A-Za-z0-9_.@])@[A-Za-z0-9_]{2,}"

TEAM_TEXT = "coalesce(title, '') || ' ' || coalesce(text, '')"
KEY = "source, record_type, record_id"

# Tables of the scratch database (expectations/landing/scratch.py).
FILE_COLUMNS = "landing_file_columns"  # one row per (file, column): the column check's table
EXPECTED_COLUMNS = "landing_expected_columns"  # the envelope's columns, and which are team-only
ROWS = "landing"  # one narrow row per landing row: the row checks' table
# Keys of already-validated files in the partitions the new files touch.
VALIDATED_KEYS = "landing_validated_keys"
# Key hashes seen more than once among the checked and the compared rows: the only
# candidates for the key checks, which then compare the real keys.
REPEATED_KEYS = "landing_repeated_keys"
FILES = "landing_files"  # file_id -> filename of every file in the tables above
TOMBSTONES = "landing_tombstones"  # the state store's tombstone list when the contract runs

# The envelope's columns with their types; title/text only in team-platform files.
EXPECTED_TYPES: dict[str, pa.DataType] = {
    **{f.name: f.type for f in ENVELOPE_SCHEMA},
    **dict(TEAM_TEXT_FIELDS),
}
TEAM_ONLY = {name for name, _ in TEAM_TEXT_FIELDS}


@dataclass(frozen=True)
class Check:
    """One expectation over the ``landing`` table; its query selects the offending (file_id, record_id).

    A row rule has a `predicate`: SQL over one envelope row, true when the row offends.
    Loading evaluates it once per row into the boolean column `flag`, so the expectation
    only selects the flagged rows (a dozen checks do not each re-evaluate regexes over
    every row). `team_text` rules read title/text, which only team files hold (elsewhere
    there is no text to match). A rule across rows (keys) gives its own `query`.
    """

    name: str
    description: str
    predicate: str = ""
    query: str = ""
    team_text: bool = False
    fresh_only: bool = False  # only rows of files new or changed since the ledger saw them

    @property
    def flag(self) -> str:
        return f"fails_{self.name}"

    @property
    def sql(self) -> str:
        return self.query or f"select file_id, record_id from {{batch}} where {self.flag}"  # noqa: S608


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _not_pseudonym(column: str) -> str:
    """Set and not 64 lowercase hex: the same rows as ``not regexp_full_match(c, '[0-9a-f]{64}')``.

    A string of [0-9a-f] only is ASCII, so its byte length is its length. A search for one
    character outside the class costs about half of the anchored 64-repetition match.
    """
    return f"{column} is not null and (strlen({column}) <> 64 or regexp_matches({column}, '[^0-9a-f]'))"


# Candidate rows of the key checks: key hash repeated (see REPEATED_KEYS).
_CANDIDATES = f"select file_id, {KEY}, extracted_at from {{batch}} semi join {REPEATED_KEYS} using (key_hash)"  # noqa: S608

ROW_CHECKS = (
    Check(
        "required_fields_not_null",
        "source, platform, record_type, record_id, occurred_at and extracted_at are set",
        predicate="source is null or platform is null or record_type is null or record_id is null "
        "or occurred_at is null or extracted_at is null",
    ),
    Check(
        "actor_is_pseudonym_or_null",
        "actor is 64 lowercase hex characters (an HMAC-SHA256 pseudonym) or null",
        predicate=_not_pseudonym("actor"),
    ),
    Check(
        "parent_actor_is_pseudonym_or_null",
        "parent_actor is 64 lowercase hex characters or null",
        predicate=_not_pseudonym("parent_actor"),
    ),
    Check(
        "occurred_at_not_in_future",
        "occurred_at is not later than now (10 minutes of clock skew allowed)",
        predicate=f"occurred_at > now() + {FUTURE_TOLERANCE}",
    ),
    Check(
        "actor_not_tombstoned",
        "no actor or parent_actor is on the tombstone list (opted out or erased) in a new or changed file",
        predicate=f"actor in (select pseudonym from {TOMBSTONES}) or parent_actor in (select pseudonym from {TOMBSTONES})",  # noqa: S608
        fresh_only=True,
    ),
    Check(
        "platform_known",
        f"platform is one of {', '.join(PLATFORMS)}",
        predicate=f"platform not in ({_in_list(PLATFORMS)})",
    ),
    Check(
        "record_type_known",
        f"record_type is one of {', '.join(RECORD_TYPES)}",
        predicate=f"record_type not in ({_in_list(RECORD_TYPES)})",
    ),
    Check(
        "key_unique_within_file",
        "(source, record_type, record_id) appears once per file",
        query=f"select file_id, record_id from (select file_id, record_id, "  # noqa: S608
        f"count(*) over (partition by file_id, {KEY}) as copies from ({_CANDIDATES}) as candidates) as counted "
        "where copies > 1",
    ),
    Check(
        "key_unique_after_dedup",
        "the latest extracted_at copy of each (source, record_type, record_id) is in one file only",
        # Compared with the validated files of the same dt partitions (see this module's doc).
        query=f"with candidates as ({_CANDIDATES}), "  # noqa: S608
        f"keyed as (select file_id, {KEY}, extracted_at from candidates "
        f"union all select file_id, {KEY}, extracted_at from {VALIDATED_KEYS} "
        f"semi join candidates using ({KEY})), "
        f"repeated as (select {KEY} from keyed group by all having count(*) > 1), "
        f"latest as (select * from keyed semi join repeated using ({KEY}) "
        f"qualify extracted_at = max(extracted_at) over (partition by {KEY})) "
        f"select file_id, record_id from (select file_id, record_id, "
        f"min(file_id) over (partition by {KEY}) as first_file, "
        f"max(file_id) over (partition by {KEY}) as last_file from latest) as tied where first_file <> last_file",
    ),
    Check(
        "team_text_has_no_email",
        "team-written title/text holds no e-mail address",
        predicate=f"regexp_matches({TEAM_TEXT}, '{EMAIL_RE}')",
        team_text=True,
    ),
    Check(
        "team_text_has_no_phone",
        "team-written title/text holds no phone number",
        predicate=f"regexp_matches({TEAM_TEXT}, '{PHONE_RE}')",
        team_text=True,
    ),
    Check(
        "team_text_has_no_handle",
        "team-written title/text holds no @handle",
        predicate=f"regexp_matches({TEAM_TEXT}, '{HANDLE_RE}')",
        team_text=True,
    ),
)

COLUMNS_CHECK = Check(
    "columns_match_envelope",
    "each file has exactly the envelope columns and types; title/text only in team-platform files",
    query="select c.filename, c.column_name from {batch} as c "  # noqa: S608
    f"left join {EXPECTED_COLUMNS} as e on e.column_name = c.column_name "
    "where e.column_name is null or not c.type_ok or (e.team_only and not c.team_file) "
    "union all "
    "select f.filename, e.column_name from (select distinct filename from {batch}) as f "
    f"cross join {EXPECTED_COLUMNS} as e "
    "where not e.team_only and not exists (select 1 from {batch} as c "
    "where c.filename = f.filename and c.column_name = e.column_name)",
)


def type_ok(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Same logical type; list field names and timestamp units differ between writers."""
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(actual) and actual.tz in ("UTC", "+00:00", "Etc/UTC")
    if pa.types.is_list(expected):
        return (pa.types.is_list(actual) or pa.types.is_large_list(actual)) and type_ok(
            actual.value_type, expected.value_type
        )
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    return actual.equals(expected)
