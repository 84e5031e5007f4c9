"""Landing contract: what connectors wrote must match the envelope before dbt reads it.

`validate_landing` checks only the landing files new or changed since the last pass (a
ledger of fingerprints), runs two GX suites over them in a throwaway in-memory DuckDB
database (the envelope's columns per file, then one rule per row and the key checks), and
moves every file holding an offending row to quarantine beside a reason file, so the next
run is not blocked and nothing is lost. ``full=True`` (``agora validate --full``) checks
every file.

The package, one module per concern (each imports only the others' public names):

- `ledger`: which files passed, by fingerprint (``<state>/landing-contract.json``)
- `checks`: the column check and the row rules as SQL (`Check`, `ROW_CHECKS`, the
  personal-data patterns), the scratch tables' names, and why the key checks need only
  the same partitions
- `files`: listing paths, partitions and Parquet footers (`LandingFile`, `inspect_files`)
- `scratch`: the in-memory DuckDB database and the one load of the files into it
- `suites`: the two GX suites and which files hold the offending rows (`run_checks`)
- `quarantine`: moving a failed file out of landing, with its ``reason.json``
- `runner`: `validate_landing` (ledger → suites → quarantine → ledger, under a lock)
"""

from __future__ import annotations

from expectations.landing.checks import (
    COLUMNS_CHECK,
    EMAIL_RE,
    FILES,
    FUTURE_TOLERANCE,
    HANDLE_RE,
    KEY,
    PHONE_RE,
    REPEATED_KEYS,
    ROW_CHECKS,
    SAMPLE_IDS,
    TEAM_TEXT,
    TOMBSTONES,
    VALIDATED_KEYS,
    Check,
)
from expectations.landing.ledger import LEDGER
from expectations.landing.runner import validate_landing
from expectations.landing.scratch import ROW_COLUMNS

__all__ = [
    "COLUMNS_CHECK",
    "EMAIL_RE",
    "FILES",
    "FUTURE_TOLERANCE",
    "HANDLE_RE",
    "KEY",
    "LEDGER",
    "PHONE_RE",
    "REPEATED_KEYS",
    "ROW_CHECKS",
    "ROW_COLUMNS",
    "SAMPLE_IDS",
    "TEAM_TEXT",
    "TOMBSTONES",
    "VALIDATED_KEYS",
    "Check",
    "validate_landing",
]
