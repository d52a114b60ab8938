"""The terminal renderer: readable at 80 columns, spans of a record's SQL shown as SQL spans,
a caret under the token the SQL parser stopped at."""

from __future__ import annotations

from policystrata.report.terminal import provenance_text, sql_excerpt


def test_a_span_into_a_records_sql_is_not_shown_as_a_span_of_the_trace_file() -> None:
    prov = {"source": "traces.jsonl", "line": 3, "span": [13, 14], "snippet": "("}
    assert provenance_text(prov) == "traces.jsonl:3 sql[13:14] `(`"
    cli = {"source": "command line", "span": [73, 81], "snippet": "accounts"}
    assert provenance_text(cli) == "command line sql[73:81] `accounts`"
    assert provenance_text({"source": "sql", "span": [0, 6]}) == "sql[0:6]"
    assert provenance_text({"source": "policy.yaml", "line": 12}) == "policy.yaml:12"


def test_excerpt_puts_the_caret_under_the_span_on_its_own_line() -> None:
    sql = "select a,\n\tcount(\nfrom t"
    head, line, caret = sql_excerpt(sql, (sql.index("t", 20), len(sql)))
    assert head == "line 3, column 6:"
    assert line == "  from t" and caret == "       ^"


def test_excerpt_of_a_long_line_is_a_window_around_the_caret() -> None:
    sql = "select " + ", ".join(f"c{i}" for i in range(60)) + " from t where x = = 1"
    start = sql.rindex("= 1")
    head, line, caret = sql_excerpt(sql, (start, start + 1), width=40)
    assert head == f"line 1, column {start + 1}:"
    assert len(line) <= 2 + 40 + 2
    assert line.startswith("  …")
    col = caret.index("^")
    assert line[col] == "=" and line[col:].startswith("= 1")
