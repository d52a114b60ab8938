"""The gate in front of execution: only SQL the read-only guard accepted ever reaches a server.

:func:`vet_sql` runs the SQL lowering's fail-closed read-only guard
(``policystrata.lower.sql.lower_sql(...).read_only``) and then a second, independent fence of our
own (one statement; no call of a function that changes session state, sleeps, reads files or
reaches other servers). It returns a :class:`VettedSQL`, the only thing the execution functions
accept. When the guard is not importable, nothing is vetted and nothing runs.

>>> vet_sql("SELECT 1", guard=lambda text: (True, "test"))    # doctest: +ELLIPSIS
VettedSQL(text='SELECT 1', guard='test')
>>> vet_sql("SELECT pg_sleep(10)", guard=lambda text: (True, "test"))
Traceback (most recent call last):
...
policystrata.db.vet.UnvettedSQL: refused to execute: calls pg_sleep (not allowed against a database)
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from policystrata.errors import StrataError

Guard = Callable[[str], tuple[bool, str]]
"""A read-only guard: SQL text -> (accepted, reason or guard name)."""


class UnvettedSQL(StrataError):
    """SQL that did not pass the read-only guard; it is never sent to a server."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"refused to execute: {reason}")


_TOKEN = object()

# Functions a read-only transaction still allows but that break the recipe: set_config can move
# app.tenant_id to another tenant mid-transaction, the rest sleep, signal, read server files or
# reach other servers.
_DENIED_FUNCTIONS = re.compile(
    r"\b(set_config|pg_sleep(?:_for|_until)?|dblink\w*|pg_read_(?:binary_)?file|pg_ls_\w+|"
    r"pg_stat_file|lo_\w+|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|"
    r"pg_advisory\w*|pg_try_advisory\w*|pg_notify|pg_logical_\w+|pg_switch_wal|"
    r"pg_create_\w+|pg_drop_\w+|query_to_xml\w*|table_to_xml\w*|pg_file_\w+)\s*\(",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^\s*(?:\(\s*)*(select|with|values|table)\b", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRING = re.compile(r"'(?:[^']|'')*'")


@dataclass(frozen=True)
class VettedSQL:
    """SQL text that passed the read-only guard. Build it only through :func:`vet_sql`."""

    text: str
    guard: str
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _TOKEN:
            raise UnvettedSQL("VettedSQL must be built by vet_sql()")


_GUARDED: dict[str, tuple[bool, str]] = {}
_GUARDED_SIZE = 1024


def lowering_guard(text: str) -> tuple[bool, str]:
    """The SQL lowering's fail-closed read-only guard (``lower_sql(...).read_only``); the
    verdict on a text is remembered (a bounded memo: the same SQL is vetted for several runs)."""
    hit = _GUARDED.get(text)
    if hit is not None:
        return hit
    verdict = _lowering_guard(text)
    if len(_GUARDED) >= _GUARDED_SIZE:
        _GUARDED.pop(next(iter(_GUARDED)))
    _GUARDED[text] = verdict
    return verdict


def _lowering_guard(text: str) -> tuple[bool, str]:
    try:
        lower_sql = importlib.import_module("policystrata.lower.sql").lower_sql
    except (ImportError, AttributeError) as e:
        raise UnvettedSQL(
            f"the read-only guard (policystrata.lower.sql.lower_sql) is unavailable: {e}"
        ) from None
    result = lower_sql("db_vet", text)
    if result.read_only:
        return True, "lower_sql.read_only"
    reasons = "; ".join(
        f"{getattr(f, 'kind', '?')}: {getattr(f, 'reason', f)}" for f in result.findings
    )
    return False, reasons or "not read-only"


def second_fence(text: str) -> str | None:
    """Our own independent check; returns the reason to refuse, or None.

    >>> second_fence("select 1; select set_config('app.tenant_id', 'beta', true)")
    'more than one statement'
    >>> second_fence("SELECT count(*) FROM t WHERE note = 'a;b'") is None
    True
    """
    code = _STRING.sub("''", _COMMENT.sub(" ", text))
    body = code.strip().rstrip(";").strip()
    if ";" in body:
        return "more than one statement"
    if not _LEADING.match(body):
        return "not a single SELECT / WITH / VALUES / TABLE statement"
    m = _DENIED_FUNCTIONS.search(code)
    if m:
        return f"calls {m.group(1).lower()} (not allowed against a database)"
    return None


def vet_sql(text: str, *, guard: Guard | None = None) -> VettedSQL:
    """Vet ``text``; raise :class:`UnvettedSQL` unless the guard and the second fence accept it.

    ``guard`` defaults to :func:`lowering_guard`. Tests may pass their own guard; the second fence
    always applies.
    """
    accepted, reason = (guard or lowering_guard)(text)
    if not accepted:
        raise UnvettedSQL(f"the read-only guard rejected it ({reason})")
    fence = second_fence(text)
    if fence is not None:
        raise UnvettedSQL(fence)
    return VettedSQL(text, reason, _TOKEN)
