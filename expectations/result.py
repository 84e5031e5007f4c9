"""What a contract run reports, and the error that blocks the pipeline.

Kept free of heavy imports so `import expectations` stays cheap (GX costs seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Failure:
    """One expectation that failed on one suite (landing) or one table (marts)."""

    where: str  # "landing" or "marts.<table>"
    expectation: str
    rows: int
    files: list[str] = field(default_factory=list)  # landing files holding offending rows
    detail: str = ""
    unit: str = "rows"  # what `rows` counts: rows, or columns for column-name checks

    def line(self) -> str:
        text = f"{self.where}: {self.expectation} failed on {self.rows} {self.unit}"
        if self.files:
            shown = ", ".join(self.files[:5])
            more = f" and {len(self.files) - 5} more" if len(self.files) > 5 else ""
            text += f" (files: {shown}{more})"
        if self.detail:
            text += f" [{self.detail}]"
        return text


@dataclass
class ContractResult:
    suite: str
    expectations_evaluated: int = 0
    expectations_passed: int = 0
    rows_checked: int = 0
    # Landing only: files checked (new or changed), files skipped as already validated,
    # and validated files read for their keys (same partitions as the checked ones).
    files_checked: int = 0
    files_unchanged: int = 0
    files_compared: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # where offending files were moved

    @property
    def success(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        """Plain JSON types (Airflow XCom, CLI output)."""
        files = (
            {
                "files_checked": self.files_checked,
                "files_unchanged": self.files_unchanged,
                "files_compared": self.files_compared,
            }
            if self.suite == "landing"
            else {}
        )
        return {
            "suite": self.suite,
            "success": self.success,
            "expectations_evaluated": self.expectations_evaluated,
            "expectations_passed": self.expectations_passed,
            "rows_checked": self.rows_checked,
            **files,
            "seconds": round(self.seconds, 3),
            "failures": [f.line() for f in self.failures],
            "quarantined": list(self.quarantined),
        }

    def summary(self) -> str:
        head = (
            f"{self.suite} contract: {self.expectations_passed}/{self.expectations_evaluated} expectations "
            f"passed on {self.rows_checked} rows in {self.seconds:.2f}s"
        )
        if self.suite == "landing":
            head += (
                f" ({self.files_checked} new or changed files checked, {self.files_unchanged} unchanged skipped,"
                f" {self.files_compared} compared for key ties)"
            )
        return "\n".join([head, *(f.line() for f in self.failures)])


class ContractFailed(Exception):
    """Raised when a contract fails: its message lists one failed expectation per line."""

    def __init__(self, result: ContractResult):
        self.result = result
        super().__init__("\n".join(f.line() for f in result.failures))


class ContractError(RuntimeError):
    """GX could not evaluate an expectation (not a data problem: nothing is quarantined)."""
