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

import io
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

from policystrata.results import ScanReport

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
    """:func:`to_junit` written to ``handle`` one testcase at a time: each testcase is an
    element of its own, indented as ``ElementTree.indent`` indents it in the whole document
    and serialized by ``ElementTree`` (so escaping and attribute order are its own); the
    document's and the suites' start and end tags around them. Never the whole tree, nor the
    whole document as one string (a 10,000-record scan has ~500,000 testcases)."""
    from policystrata.scan.store import CheckStore, FindingStore, Tally

    checks = report.checks
    by_layer: dict[str, Sequence[Any]] = {}
    if isinstance(checks, CheckStore):  # on disk: each layer's outcomes read on demand
        by_layer = {layer: checks.layer(layer) for layer in checks.by_layer}
    else:
        for c in checks:
            by_layer.setdefault(c.layer, []).append(c)  # type: ignore[attr-defined]
    found = report.findings
    findings: Any = found.by_id() if isinstance(found, FindingStore) else {f.id: f for f in found}
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
    root = ET.Element("testsuites", name="policystrata scan")
    root.set("tests", str(sum(n for n, _f, _s in counts.values())))
    root.set("failures", str(sum(f for _n, f, _s in counts.values())))
    root.set("errors", "0")
    root.set("skipped", str(sum(s for _n, _f, s in counts.values())))
    handle.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    if not layers:  # no child: an empty element, as ElementTree writes it
        handle.write(ET.tostring(root, encoding="unicode") + "\n")
        return
    handle.write(_start_tag(root) + "\n  ")
    for i, layer in enumerate(layers):
        cases = by_layer[layer]
        n, n_fail, n_skip = counts[layer]
        suite = ET.Element(
            "testsuite",
            name=layer,
            tests=str(n),
            failures=str(n_fail),
            errors="0",
            skipped=str(n_skip),
            time="0",
        )
        handle.write(_start_tag(suite) + "\n    ")
        for j, c in enumerate(cases):
            case = _testcase(layer, c, findings)
            ET.indent(case, space="  ", level=2)
            handle.write(ET.tostring(case, encoding="unicode"))
            handle.write("\n    " if j < len(cases) - 1 else "\n  ")
        handle.write("</testsuite>")
        handle.write("\n  " if i < len(layers) - 1 else "\n")
    handle.write("</testsuites>\n")


def _start_tag(elem: ET.Element) -> str:
    """The start tag ElementTree writes for ``elem`` (an element without children)."""
    empty = ET.tostring(elem, encoding="unicode")
    assert empty.endswith(" />"), empty
    return empty[: -len(" />")] + ">"


def _testcase(layer: str, c: Any, findings: dict[str, Any]) -> ET.Element:
    attrs = {"classname": f"{layer}.{c.record}", "name": c.check, "time": "0"}
    if c.location is not None:
        attrs["file"] = c.location.file
        if c.location.line is not None:
            attrs["line"] = str(c.location.line)
    case = ET.Element("testcase", attrs)
    if c.status == "failed":
        msgs = [findings[i].message for i in c.finding_ids if i in findings]
        message = c.message or ("; ".join(msgs)) or f"{c.check} failed"
        fail = ET.SubElement(case, "failure", message=message[:500], type=c.check)
        lines = []
        for i in c.finding_ids:
            f = findings.get(i)
            if f is not None:
                lines.append(
                    f"{f.id} [{f.severity}/{f.confidence}] {f.message}\n"
                    f"  fix: {f.probable_fix}\n  re-check: {f.recheck}"
                )
        fail.text = "\n".join(lines) or message
    elif c.status == "skipped":
        ET.SubElement(case, "skipped", message=c.message or "not run")
    return case
