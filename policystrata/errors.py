"""Errors the user can act on. Each carries where the problem is (file:line) and what is wrong.

The CLI prints them as one line (``file:line: message``) and exits 2; no traceback.

>>> str(InputError("unknown metric 'ticket_cnt'", file="policy.yaml", line=12,
...                key="roles.analyst.allowed_metrics"))
"policy.yaml:12: roles.analyst.allowed_metrics: unknown metric 'ticket_cnt'"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class StrataError(Exception):
    """Base class for errors PolicyStrata reports without a traceback."""

    exit_code = 2


class InputError(StrataError):
    """Bad input (YAML, rule file, IR text, CLI arguments) with a location."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        super().__init__(str(self))

    def location(self) -> str:
        loc = self.file or ""
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def __str__(self) -> str:
        parts = [p for p in (self.location(), self.key) if p]
        parts.append(self.message)
        return ": ".join(parts)


class InputErrors(StrataError):
    """Several input errors found in one pass (e.g. every broken reference in a policy)."""

    def __init__(self, errors: Iterable[InputError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest candidate, or ``""``.

    >>> did_you_mean("ticket_cnt", ["ticket_count", "net_revenue"])
    " (did you mean 'ticket_count'?)"
    """
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def type_name(value: object, *, json: bool = False) -> str:
    """What a parsed value is, in the words of the file it came from (YAML: mapping / list;
    JSON: object / array).

    >>> type_name([1]), type_name([1], json=True), type_name(None), type_name(None, json=True)
    ('a list', 'an array', 'nothing (null)', 'null')
    """
    if isinstance(value, list):
        return "an array" if json else "a list"
    if isinstance(value, dict):
        return "an object" if json else "a mapping"
    if value is None:
        return "null" if json else "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


ENV_DEBUG = "STRATA_DEBUG"
_DEBUG = {"on": False}


def set_debug(on: bool) -> None:
    """``strata --debug`` for this invocation (each invocation sets it, on or off)."""
    _DEBUG["on"] = on


def debugging() -> bool:
    """``strata --debug`` or ``STRATA_DEBUG=1``: show the traceback of an internal error (one
    switch for the pipeline and the CLI)."""
    import os

    return _DEBUG["on"] or os.environ.get(ENV_DEBUG, "").strip().lower() in ("1", "true", "yes")
