"""The one rule the Agora DAGs apply to errors: permanent ones fail the task at once.

Airflow retries a failed task (agora_ingest: 3 times, with backoff). That helps with the
network, rate limits and locks, never with a bad config, a private repository, a refused
token or data breaking a contract: those would fail the same way three more times and hide
the message. `fail_at_once_if_permanent` turns them into AirflowFailException (no retry);
what `agora.errors.is_permanent` does not recognise is left to Airflow's retries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def fail_at_once_if_permanent(fn: F) -> F:
    """Decorate a task's function (under `@task`): permanent errors skip Airflow's retries."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            from agora.errors import is_permanent

            if not is_permanent(e):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(e).__name__}: {e}") from e

    return wrapper  # type: ignore[return-value]
