"""The gate in front of execution: only SQL that passed both checks ever reaches a server.

:func:`vet_sql` runs

1. the SQL lowering's fail-closed read-only guard (``policystrata.lower.sql.lower_sql(...)
   .read_only``): exactly one SELECT, no write anywhere, no denied function; and
2. the execution allow-list (:mod:`policystrata.lower.sql.allowlist`): every function, operator,
   cast and relation of the statement is on the dialect's list, the relations being the
   database's own tables and views and the statement's CTEs.

It returns a :class:`VettedSQL`, the only thing the execution functions accept; a refusal is an
:class:`UnvettedSQL` that names the construct and its span. When the guard is not importable,
nothing is vetted and nothing runs. Behind the gate, the server is the second fence (see
:mod:`policystrata.db.session`): a prepared single statement, a read-only transaction with
timeouts, a login that cannot become more.

>>> vet_sql("SELECT count(*) FROM t", relations={"t"}, guard=lambda text: (True, "test"))
... # doctest: +ELLIPSIS
VettedSQL(text='SELECT count(*) FROM t', guard='test')
>>> vet_sql("SELECT ts_stat('x')", relations=set(), guard=lambda text: (True, "test"))
Traceback (most recent call last):
...
policystrata.db.vet.UnvettedSQL: refused to execute: function ts_stat() is not on the execution ...
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from policystrata.errors import StrataError

Guard = Callable[[str], tuple[bool, str]]
"""A read-only guard: SQL text -> (accepted, reason or guard name)."""


class UnvettedSQL(StrataError):
    """SQL that did not pass the gate; it is never sent to a server.

    ``kind``: ``not_read_only`` (the read-only guard rejected it) or ``off_allow_list`` (a
    construct is not on the execution allow-list); ``construct`` and ``span`` locate the first
    refused construct in the SQL text when known."""

    def __init__(
        self,
        reason: str,
        *,
        kind: str = "off_allow_list",
        construct: str | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.reason = reason
        self.kind = kind
        self.construct = construct
        self.span = span
        super().__init__(f"refused to execute: {reason}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "reason": self.reason}
        if self.construct is not None:
            out["construct"] = self.construct
        if self.span is not None:
            out["span"] = list(self.span)
        return out


_TOKEN = object()


@dataclass(frozen=True)
class VettedSQL:
    """SQL text that passed the gate. Build it only through :func:`vet_sql`."""

    text: str
    guard: str
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _TOKEN:
            raise UnvettedSQL("VettedSQL must be built by vet_sql()")


_GUARDED: dict[str, tuple[bool, str, tuple[int, int] | None]] = {}
_GUARDED_SIZE = 1024


def lowering_guard(text: str) -> tuple[bool, str]:
    """The SQL lowering's fail-closed read-only guard (``lower_sql(...).read_only``); the
    verdict on a text is remembered (a bounded memo: the same SQL is vetted for several runs)."""
    accepted, reason, _span = _guarded(text)
    return accepted, reason


def _guarded(text: str) -> tuple[bool, str, tuple[int, int] | None]:
    hit = _GUARDED.get(text)
    if hit is not None:
        return hit
    verdict = _lowering_guard(text)
    if len(_GUARDED) >= _GUARDED_SIZE:
        _GUARDED.pop(next(iter(_GUARDED)))
    _GUARDED[text] = verdict
    return verdict


def _lowering_guard(text: str) -> tuple[bool, str, tuple[int, int] | None]:
    try:
        from policystrata.lower.sql import lower_sql
    except ImportError as e:  # fail closed: without the guard nothing is vetted
        raise UnvettedSQL(
            f"the read-only guard (policystrata.lower.sql.lower_sql) is unavailable: {e}",
            kind="not_read_only",
        ) from None
    result = lower_sql("db_vet", text)
    if result.read_only:
        return True, "lower_sql.read_only", None
    reasons = "; ".join(
        f"{getattr(f, 'kind', '?')}: {getattr(f, 'reason', f)}" for f in result.findings
    )
    span = next((f.span for f in result.findings if getattr(f, "span", None)), None)
    return False, reasons or "not read-only", span


def vet_sql(
    text: str,
    *,
    relations: Collection[str],
    dialect: str = "postgres",
    guard: Guard | None = None,
) -> VettedSQL:
    """Vet ``text``; raise :class:`UnvettedSQL` unless the read-only guard and the execution
    allow-list accept it. ``relations``: the tables and views the statement may read.

    ``guard`` defaults to :func:`lowering_guard`. Tests may pass their own guard; the allow-list
    always applies.
    """
    if guard is None:
        accepted, reason, span = _guarded(text)
    else:
        (accepted, reason), span = guard(text), None
    if not accepted:
        raise UnvettedSQL(
            f"the read-only guard rejected it ({reason})", kind="not_read_only", span=span
        )
    from policystrata.lower.sql.allowlist import execution_refusals

    refusals = execution_refusals(text, relations=relations, dialect=dialect)
    if refusals:
        first = refusals[0]
        raise UnvettedSQL(
            str(first), kind="off_allow_list", construct=first.construct, span=first.span
        )
    return VettedSQL(text, reason, _TOKEN)
