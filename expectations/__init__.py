"""Data contracts (Great Expectations): landing before dbt, marts before publishing.

`validate_landing` and `validate_marts` are loaded on first use: importing this package
(e.g. for `ContractFailed` in a DAG file) must not import GX, which costs seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from expectations.result import ContractError, ContractFailed, ContractResult, Failure

if TYPE_CHECKING:
    from expectations.landing import validate_landing
    from expectations.marts import validate_marts

__all__ = ["ContractError", "ContractFailed", "ContractResult", "Failure", "validate_landing", "validate_marts"]


def __getattr__(name: str) -> Any:
    if name == "validate_landing":
        from expectations.landing import validate_landing

        return validate_landing
    if name == "validate_marts":
        from expectations.marts import validate_marts

        return validate_marts
    raise AttributeError(f"module 'expectations' has no attribute {name!r}")
