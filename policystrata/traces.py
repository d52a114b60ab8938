"""Imported traces: JSONL records from a real application, read one record at a time.

Each line is judged on its own. A malformed line, a record without ``id``/``principal``/``sql``,
or an IR that does not parse becomes a :class:`~policystrata.witness.RecordError` for that line,
and reading goes on. Records of type ``agent_session``, ``tool_execution`` or ``mutation`` without
SQL are skipped and counted (other record types, e.g. ``sql_trace``, are judged). Unknown keys
are ignored (forward compatible).

Every field of the published format (COMPAT.md §5) keeps its meaning: ``query.sql`` stands for
``sql`` and ``trace_id`` for ``id`` when those are absent; ``tenant_ids`` hashed by a recorder
(``hmac-sha256:…``, ``sha256:…``) are not bindings (they name no tenant) and are ignored;
``source`` (default ``imported_trace``), ``timestamp``, ``evidence_level`` (default
``imported_trace``), ``expected_policy`` and ``regression_case`` (default ``unclassified``) are
carried through to the findings, never judged.

>>> r = record_to_case({"trace_id": "t-9", "principal": "p", "query": {"sql": "select 1"},
...     "tenant_ids": ["acme", "hmac-sha256:1f2e3d4c5b6a79881f2e3d4c"]}, "t.jsonl", 3)
>>> r.id, r.sql, r.tenant_ids, r.meta["hashed_tenant_ids"]
('t-9', 'select 1', ('acme',), 1)

>>> import json, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
>>> _ = p.write_text(json.dumps({"id": "a", "principal": "acme_analyst", "sql": "select 1"})
...                  + "\\n{broken\\n")
>>> [type(item).__name__ for item in read_traces(p)]
['Case', 'RecordError']
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policystrata.case import Case
from policystrata.errors import InputError, type_name
from policystrata.facts import Const, Provenance
from policystrata.witness import RecordError, SourceRef

SKIPPED_RECORD_TYPES = ("agent_session", "tool_execution", "mutation")
#: Prefixes of tenant ids a recorder hashed (never a binding: they name no tenant).
HASHED_PREFIXES = ("hmac-sha256:", "sha256:")
EVIDENCE_LEVELS = (
    "deterministic_fixture",
    "property_generated",
    "imported_trace",
    "real_db",
    "blinded_suite",
)
#: The published defaults of the pass-through fields.
RECORD_DEFAULTS = {
    "source": "imported_trace",
    "evidence_level": "imported_trace",
    "regression_case": "unclassified",
}
REGRESSION_CASES = (
    "fail_to_pass",
    "pass_to_pass",
    "contain_to_contain",
    "deny_to_deny",
    "allow_to_allow",
    "unclassified",
)


@dataclass(frozen=True)
class Skipped:
    """A record that is not a query (agent session, tool execution, mutation log)."""

    record_type: str
    line: int


TraceItem = Case | RecordError | Skipped

MAX_RECORD_BYTES = 4 * 1024 * 1024
"""A trace line longer than this is a record error for that line (a per-record budget)."""


def read_traces(path: Path, display_name: str | None = None) -> Iterator[TraceItem]:
    """Yield one item per non-blank line of a trace file, lazily.

    Lines are decoded one at a time, so a line that is not UTF-8 is a ``malformed_trace_line``
    for that line only (a UTF-8 byte-order mark on the first line is allowed).
    """
    name = display_name or path.name
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read trace file: {exc.strerror or exc}", file=name) from None
    with handle:
        for lineno, data in enumerate(handle, start=1):
            if lineno == 1 and data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
            if len(data) > MAX_RECORD_BYTES:  # one record's budget, not the file's
                yield RecordError(
                    kind="malformed_trace_line",
                    message=f"the record is {len(data)} bytes long; at most {MAX_RECORD_BYTES} "
                    "are read per record",
                    source=SourceRef(file=name, line=lineno),
                )
                continue
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RecordError(
                    kind="malformed_trace_line",
                    message=f"not UTF-8 text: byte 0x{data[exc.start]:02x} at byte {exc.start + 1}"
                    " of the line",
                    source=SourceRef(file=name, line=lineno),
                )
                continue
            if not raw.strip():
                continue
            yield parse_trace_line(raw, name, lineno)


def json_error_message(exc: json.JSONDecodeError, text: str) -> str:
    """What is wrong with a JSON line, at the column Python's parser reports.

    >>> try:
    ...     json.loads('{"id": "a", "sql": "select 1"')
    ... except json.JSONDecodeError as exc:
    ...     print(json_error_message(exc, '{"id": "a", "sql": "select 1"'))
    not valid JSON: Expecting ',' delimiter at column 30 (the line ends before the record is closed)
    """
    message = f"not valid JSON: {exc.msg} at column {exc.colno}"
    if exc.pos >= len(text.rstrip()):
        message += " (the line ends before the record is closed)"
    return message


def parse_trace_line(raw: str, file: str, line: int) -> TraceItem:
    """Turn one JSONL line into a Case, a RecordError, or Skipped."""
    where = SourceRef(file=file, line=line)
    text = raw.rstrip("\r\n")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return RecordError(
            kind="malformed_trace_line",
            message=json_error_message(exc, text),
            source=where,
        )
    except RecursionError:
        return RecordError(
            kind="malformed_trace_line", message="JSON nested too deeply", source=where
        )
    if not isinstance(record, dict):
        return RecordError(
            kind="malformed_trace_line",
            message=f"a trace record must be a JSON object, got {type_name(record, json=True)}",
            source=where,
        )
    return record_to_case(record, file, line)


def _record_sql(record: dict[str, Any]) -> Any:
    sql = record.get("sql")
    if sql is None and isinstance(record.get("query"), dict):
        sql = record["query"].get("sql")
    return sql


def record_to_case(record: dict[str, Any], file: str, line: int) -> TraceItem:
    """Normalise a trace record (``query.sql`` -> ``sql``) into a Case."""
    from policystrata.ir import ir_from_value

    where = SourceRef(file=file, line=line)
    sql = _record_sql(record)
    record_type = record.get("record_type")
    if sql is None and record_type in SKIPPED_RECORD_TYPES:
        return Skipped(record_type=str(record_type), line=line)
    case_id = record.get("id")
    if case_id in (None, "") and isinstance(record.get("trace_id"), str):
        case_id = record["trace_id"]
    missing = [
        k
        for k, v in (("id", case_id), ("principal", record.get("principal")), ("sql", sql))
        if v in (None, "")
    ]
    if missing:
        return RecordError(
            kind="invalid_trace_record",
            message=f"missing required field(s): {', '.join(missing)}",
            source=where,
            case_id=str(case_id) if case_id is not None else None,
        )
    bad = [
        k
        for k, v, t in (
            ("id", case_id, str),
            ("principal", record["principal"], str),
            ("sql", sql, str),
        )
        if not isinstance(v, t)
    ]
    if bad:
        return RecordError(
            kind="invalid_trace_record",
            message=f"field(s) must be strings: {', '.join(bad)}",
            source=where,
            case_id=str(case_id),
        )
    tenant_ids = record.get("tenant_ids")
    if tenant_ids is not None and (
        not isinstance(tenant_ids, list) or not all(isinstance(t, str) for t in tenant_ids)
    ):
        return RecordError(
            kind="invalid_trace_record",
            message="tenant_ids must be a list of strings",
            source=where,
            case_id=case_id,
        )
    hashed = 0
    if tenant_ids is not None:
        kept = [t for t in tenant_ids if not t.startswith(HASHED_PREFIXES)]
        hashed = len(tenant_ids) - len(kept)
        # a list of hashed ids only says the app bound something; it names no tenant
        tenant_ids = kept if kept or not hashed else None
    release = record.get("release_allowed")
    if release is not None and not isinstance(release, bool):
        return RecordError(
            kind="invalid_trace_record",
            message="release_allowed must be true or false",
            source=where,
            case_id=case_id,
        )
    params = record.get("params")
    bound: dict[str, Const] = {}
    if isinstance(params, dict):
        bound = {str(k): v for k, v in params.items() if isinstance(v, str | int | float | bool)}
    elif isinstance(params, list):
        bound = {
            f"${i}": v
            for i, v in enumerate(params, start=1)
            if isinstance(v, str | int | float | bool)
        }
    ir = None
    ir_value = record.get("semantic_ir")
    meta: dict[str, Any] = {
        k: record[k]
        for k in (
            "regression_case",
            "source",
            "timestamp",
            "evidence_level",
            "expected_policy",
            "record_type",
        )
        if k in record and record[k] is not None
    }
    if hashed:
        meta["hashed_tenant_ids"] = hashed
    if ir_value is not None:
        try:
            ir = ir_from_value(ir_value, file=file, line=line)
        except InputError as exc:
            text = f" {ir_value!r}" if isinstance(ir_value, str) else ""
            column = f" at column {exc.column}" if exc.column else ""
            message = exc.message.removeprefix("invalid semantic IR: ")
            meta["ir_error"] = f"semantic_ir{text}{column}: {message}"
    return Case(
        id=str(case_id),
        principal=record["principal"],
        ir=ir,
        sql=sql,
        tenant_ids=tuple(tenant_ids) if tenant_ids is not None else None,
        params=bound,
        release_decision=None if release is None else ("release" if release else "withhold"),
        origin=Provenance(file, line=line),
        meta=meta,
    )
