"""JUnit XML renderer: one testsuite per layer, one testcase per record x check.

A failed check carries its finding ids and message; checks of a layer whose artifact a record
does not carry are not listed (they did not run).

>>> from policystrata.results import CheckOutcome, GateResult, ScanReport
>>> report = ScanReport(version="0", config="c", domain="d", rules_digest="x",
...                     gate=GateResult(passed=True, exit_code=0),
...                     checks=[CheckOutcome(layer="compiler", check="compiler.x", record="r1",
...                                          status="passed")])
>>> 'tests="1"' in to_junit(report)
True
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from typing import Any

from policystrata.results import ScanReport
from policystrata.scan.store import CheckRow, CheckStore, FindingStore, Tally, check_row

LAYER_ORDER = (
    "input",
    "manifest",
    "grammar",
    "validator",
    "compiler",
    "database",
    "release",
    "integration",
)


def to_junit(report: ScanReport) -> str:
    """The JUnit XML document (deterministic: no timestamps, no host names)."""
    buf = io.StringIO()
    write_junit(report, buf)
    return buf.getvalue()


def write_junit(report: ScanReport, handle: Any) -> None:
    """:func:`to_junit` written to ``handle`` one testcase at a time: each testcase written as
    ``ElementTree`` writes it in the whole document indented by ``ElementTree.indent`` (its
    escaping, attribute order and indentation; see :func:`_testcase`), as are the document's
    and the suites' start and end tags around them. Never the whole tree, nor the whole
    document as one string (a 10,000-record scan has ~500,000 testcases)."""
    checks = report.checks
    by_layer: dict[str, Callable[[], Iterable[CheckRow]]] = {}
    if isinstance(checks, CheckStore):  # on disk: each layer's outcomes read on demand
        by_layer = {layer: functools.partial(checks.rows, layer) for layer in checks.by_layer}
    else:
        in_memory: dict[str, list[CheckRow]] = {}
        for c in checks:
            in_memory.setdefault(c.layer, []).append(check_row(c))
        by_layer = {layer: rows.copy for layer, rows in in_memory.items()}
    found = report.findings
    findings: Any = (
        found.briefs_by_id() if isinstance(found, FindingStore) else {f.id: f for f in found}
    )
    layers = sorted(by_layer, key=lambda s: (LAYER_ORDER.index(s) if s in LAYER_ORDER else 99, s))
    tally = Tally.of(checks=checks).layers
    counts = {
        layer: (
            tally[layer]["ran"],
            tally[layer].get("failed", 0),
            tally[layer].get("skipped", 0),
        )
        for layer in by_layer
    }
    root = {
        "name": "policystrata scan",
        "tests": str(sum(n for n, _f, _s in counts.values())),
        "failures": str(sum(f for _n, f, _s in counts.values())),
        "errors": "0",
        "skipped": str(sum(s for _n, _f, s in counts.values())),
    }
    handle.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    if not layers:  # no child: an empty element, as ElementTree writes it
        handle.write(_tag("testsuites", root) + "\n")
        return
    handle.write(_open("testsuites", root) + "\n  ")
    for i, layer in enumerate(layers):
        n, n_fail, n_skip = counts[layer]
        suite = {
            "name": layer,
            "tests": str(n),
            "failures": str(n_fail),
            "errors": "0",
            "skipped": str(n_skip),
            "time": "0",
        }
        handle.write(_open("testsuite", suite))
        sep = "\n    "
        for row in by_layer[layer]():
            handle.write(sep)
            handle.write(_testcase(row, findings))
        handle.write("\n  </testsuite>")
        handle.write("\n  " if i < len(layers) - 1 else "\n")
    handle.write("</testsuites>\n")


#: ElementTree's escapes, in its order: element text uses the first three.
_ESCAPES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\r", "&#13;"),
    ("\n", "&#10;"),
    ("\t", "&#09;"),
)
_TEXT_ESCAPES = _ESCAPES[:3]


def _escape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for char, ref in escapes:
        if char in text:
            text = text.replace(char, ref)
    return text


def _attr(text: str) -> str:
    """An attribute value as ElementTree escapes it (``&<>"`` and the three whitespace
    characters it writes as character references)."""
    return _escape(text, _ESCAPES)


def _cdata(text: str) -> str:
    """Element text as ElementTree escapes it (``&<>``)."""
    return _escape(text, _TEXT_ESCAPES)


def _open(name: str, attrs: dict[str, str]) -> str:
    """A start tag as ElementTree serializes it (attributes in the order given)."""
    return f"<{name}" + "".join(f' {k}="{_attr(v)}"' for k, v in attrs.items()) + ">"


def _tag(name: str, attrs: dict[str, str], text: str | None = None) -> str:
    """An element without children, as ElementTree serializes it (``<a x="1" />`` when it has
    no text)."""
    head = _open(name, attrs)
    return f"{head}{_cdata(text)}</{name}>" if text else f"{head[:-1]} />"


def _testcase(row: CheckRow, findings: dict[str, Any]) -> str:
    """One testcase, as ElementTree serializes it after ``indent(space="  ", level=2)``
    (``tests/test_report_junit.py`` compares with the whole tree built by ElementTree).
    Written as text: building and serializing an element per testcase was most of a large
    scan's JUnit time (~50 testcases a record)."""
    layer, check, record, file, line, status, finding_ids, text = row
    attrs = {"classname": f"{layer}.{record}", "name": check, "time": "0"}
    if file is not None:
        attrs["file"] = file
        if line is not None:
            attrs["line"] = str(line)
    if status == "failed":
        msgs = [findings[i].message for i in finding_ids if i in findings]
        message = text or ("; ".join(msgs)) or f"{check} failed"
        lines = []
        for i in finding_ids:
            f = findings.get(i)
            if f is not None:
                lines.append(
                    f"{f.id} [{f.severity}/{f.confidence}] {f.message}\n"
                    f"  fix: {f.probable_fix}\n  re-check: {f.recheck}"
                )
        child = _tag(
            "failure", {"message": message[:500], "type": check}, "\n".join(lines) or message
        )
    elif status == "skipped":
        child = _tag("skipped", {"message": text or "not run"})
    else:
        return _tag("testcase", attrs)
    return f"{_open('testcase', attrs)}\n      {child}\n    </testcase>"
