"""The two errors of privacy operations: bad input (nothing done) and a step that must be retried."""

from __future__ import annotations


class PrivacyInputError(ValueError):
    """The requests file (or an argument) is wrong: one line naming file:line. Nothing was written."""


class PrivacyError(RuntimeError):
    """A privacy step could not finish; its journal entry stays and the next run retries it."""
