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
    by_layer: dict[str, list] = {}
    for c in report.checks:
        by_layer.setdefault(c.layer, []).append(c)
    findings = {f.id: f for f in report.findings}
    root = ET.Element("testsuites", name="policystrata scan")
    total = failures = skipped = 0
    layers = sorted(by_layer, key=lambda s: (LAYER_ORDER.index(s) if s in LAYER_ORDER else 99, s))
    for layer in layers:
        cases = by_layer[layer]
        n_fail = sum(c.status == "failed" for c in cases)
        n_skip = sum(c.status == "skipped" for c in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=layer,
            tests=str(len(cases)),
            failures=str(n_fail),
            errors="0",
            skipped=str(n_skip),
            time="0",
        )
        for c in cases:
            attrs = {"classname": f"{layer}.{c.record}", "name": c.check, "time": "0"}
            if c.location is not None:
                attrs["file"] = c.location.file
                if c.location.line is not None:
                    attrs["line"] = str(c.location.line)
            case = ET.SubElement(suite, "testcase", attrs)
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
        total += len(cases)
        failures += n_fail
        skipped += n_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
