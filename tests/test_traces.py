"""Imported trace records: each line is judged on its own, and a broken line says exactly what
is wrong with it (file:line, the column JSON's parser reports) while every other line is read."""

from __future__ import annotations

import json
from pathlib import Path

from policystrata.case import Case
from policystrata.traces import parse_trace_line, read_traces
from policystrata.witness import RecordError

OK = {"id": "ok", "principal": "acme_analyst", "sql": "select 1 limit 1"}


def test_truncated_line_reports_the_column_where_the_record_is_cut_off() -> None:
    line = '{"id": "broken_001", "principal": "acme_analyst", "sql": "select 1"'
    item = parse_trace_line(line + "\n", "traces.jsonl", 1)
    assert isinstance(item, RecordError)
    assert item.kind == "malformed_trace_line"
    # Python's json module: the ',' (or '}') is missing right after the last character
    assert item.message == (
        "not valid JSON: Expecting ',' delimiter at column 68 "
        "(the line ends before the record is closed)"
    )
    assert len(line) + 1 == 68


def test_column_of_an_error_inside_the_line() -> None:
    item = parse_trace_line('{"id": "x"} extra\r\n', "t.jsonl", 4)
    assert isinstance(item, RecordError)
    assert item.message == "not valid JSON: Extra data at column 13"
    assert item.source is not None and item.source.line == 4


def test_a_line_that_is_not_utf8_is_an_error_for_that_line_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'\xff\xfe{"id": 1}\n' + json.dumps(OK).encode() + b"\n")
    items = list(read_traces(path))
    assert isinstance(items[0], RecordError)
    assert items[0].kind == "malformed_trace_line"
    assert "not UTF-8" in items[0].message and "0xff" in items[0].message
    assert isinstance(items[1], Case) and items[1].id == "ok"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(OK).encode() + b"\n")
    (item,) = list(read_traces(path))
    assert isinstance(item, Case) and item.id == "ok"
