"""Everything one ``strata scan`` run writes: scan.json, findings.jsonl, summary.json,
report.md, scan.sarif, junit.xml. File contents are deterministic (no timestamps, no absolute
paths): two runs over the same inputs give byte-identical files.

>>> from policystrata.results import GateResult, ScanReport
>>> report = ScanReport(version="0", config="c", domain="d", rules_digest="x",
...                     gate=GateResult(passed=True, exit_code=0))
>>> summary(report)["findings"]
0
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from policystrata.jsondump import _enc, dumps_indented, dumps_indented_at
from policystrata.results import ScanReport, dumps_finding

OUTPUT_FILES = (
    "scan.json",
    "findings.jsonl",
    "summary.json",
    "report.md",
    "scan.sarif",
    "junit.xml",
)


def summary(report: ScanReport) -> dict[str, Any]:
    """Counts by class, severity, layer and regression case, and the evidence exercised:
    every check that ran, with how often it passed."""
    fs = report.findings
    checks: dict[str, dict[str, int]] = {}
    layers: dict[str, dict[str, int]] = {}
    for c in report.checks:
        for bucket in (checks.setdefault(c.check, {}), layers.setdefault(c.layer, {})):
            bucket["ran"] = bucket.get("ran", 0) + 1
            bucket[c.status] = bucket.get(c.status, 0) + 1
    db = report.database
    return {
        "schema_version": 1,
        "domain": report.domain,
        "gate": report.gate.model_dump(mode="json"),
        "records": report.records,
        "findings": len(fs),
        "by_class": dict(sorted(Counter(f.witness_class for f in fs).items())),
        "by_severity": dict(sorted(Counter(f.severity for f in fs).items())),
        "by_confidence": dict(sorted(Counter(f.confidence for f in fs).items())),
        "by_layer": dict(sorted(Counter(f.surface for f in fs).items())),
        "by_regression_case": dict(
            sorted(Counter(f.regression_case or "unclassified" for f in fs).items())
        ),
        "by_evidence_level": dict(sorted(Counter(f.evidence_level for f in fs).items())),
        "evidence_exercised": {
            "layers": dict(sorted(layers.items())),
            "checks": dict(sorted(checks.items())),
            "real_db": {
                "ran": bool(db.get("ran")),
                "mode": db.get("mode"),
                **{
                    k: db[k]
                    for k in ("executed", "refused", "rls_checks", "state_assertions")
                    if k in db
                },
            },
        },
        "baseline": report.baseline.model_dump(mode="json") if report.baseline else None,
        "fuzz": {k: v for k, v in report.fuzz.items() if k != "records"},
    }


def _dump(data: Any) -> str:
    return dumps_indented(data) + "\n"


def render(report: ScanReport, fmt: str, sources: dict[str, str] | None = None) -> str:
    """One output format as text: json, jsonl, sarif, junit, markdown, summary."""
    if fmt == "json":
        return _dump(report.dump())
    if fmt == "jsonl":
        return "".join(dumps_finding(f) + "\n" for f in report.findings)
    if fmt == "sarif":
        from policystrata.report.sarif import to_sarif

        return _dump(to_sarif(report, sources))
    if fmt == "junit":
        from policystrata.report.junit import to_junit

        return to_junit(report)
    if fmt == "markdown":
        from policystrata.report.markdown import to_markdown

        return to_markdown(report)
    if fmt == "summary":
        return _dump(summary(report))
    raise ValueError(f"unknown format {fmt}")


_MARK = "\x00policystrata-stream-{}\x00"


def write_json(report: ScanReport, handle: Any, lines: Any = None) -> None:
    """``render(report, "json")`` written piece by piece: the findings and the fuzz section's
    records one at a time, never the whole document as one object or one string (the same
    bytes; a test compares). With ``lines``, each finding is also written there as
    ``render(report, "jsonl")`` writes it (each finding serialized once for both files).

    >>> import io
    >>> from policystrata.results import GateResult
    >>> r = ScanReport(version="0", config="c", domain="d", rules_digest="x",
    ...                gate=GateResult(passed=True, exit_code=0),
    ...                fuzz={"ran": True, "records": [{"record": "a", "line": None}]})
    >>> out = io.StringIO(); write_json(r, out); out.getvalue() == render(r, "json")
    True
    """
    records = report.fuzz.get("records")
    streamed = isinstance(records, list) and bool(records)
    fuzz = {**report.fuzz, "records": [_MARK.format("records")]} if streamed else report.fuzz
    findings = [_MARK.format("findings")] if report.findings else []
    skeleton = report.model_copy(update={"findings": [], "fuzz": fuzz}).dump()
    skeleton["findings"] = findings
    text = _dump(skeleton)
    if any(text.count(_enc(_MARK.format(k))) > 1 for k in ("findings", "records")):
        handle.write(render(report, "json"))  # the marker in the data itself: not streamed
        if lines is not None:
            write_jsonl(report, lines)
        return

    def finding(f: Any) -> str:
        data = f.model_dump(mode="json", exclude_none=True)
        if lines is not None:
            lines.write(json.dumps(data, sort_keys=True) + "\n")
        return dumps_indented_at(data, 2)

    pieces = {
        "findings": (lambda: (finding(f) for f in report.findings)),
        "records": lambda: (dumps_indented_at(r, 3) for r in records or []),
    }
    at = 0
    while True:
        hits = [(text.find(_enc(_MARK.format(k)), at), k) for k in pieces]
        hits = [(i, k) for i, k in hits if i >= 0]
        if not hits:
            break
        i, k = min(hits)
        handle.write(text[at:i])
        sep = ",\n" + "  " * (2 if k == "findings" else 3)
        first = True
        for piece in pieces[k]():
            if not first:
                handle.write(sep)
            handle.write(piece)
            first = False
        at = i + len(_enc(_MARK.format(k)))
    handle.write(text[at:])


def write_jsonl(report: ScanReport, handle: Any) -> None:
    """``render(report, "jsonl")`` written one finding at a time."""
    for f in report.findings:
        handle.write(dumps_finding(f) + "\n")


def write_outputs(
    report: ScanReport, out: Path, *, sarif: bool = True, sources: dict[str, str] | None = None
) -> list[Path]:
    """Write every output file into ``out`` (created); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        ("scan.json", "json"),
        ("findings.jsonl", "jsonl"),
        ("summary.json", "summary"),
        ("report.md", "markdown"),
        ("junit.xml", "junit"),
    ]
    if sarif:
        plan.append(("scan.sarif", "sarif"))
    written = []
    for name, fmt in plan:
        path = out / name
        try:
            if fmt == "jsonl":  # written with scan.json
                pass
            elif fmt == "json":
                lines_path = out / "findings.jsonl"
                with (
                    path.open("w", encoding="utf-8") as handle,
                    lines_path.open("w", encoding="utf-8") as lines,
                ):
                    write_json(report, handle, lines)
            elif fmt == "junit":  # one testcase at a time
                from policystrata.report.junit import write_junit

                with path.open("w", encoding="utf-8") as handle:
                    write_junit(report, handle)
            else:
                with path.open("w", encoding="utf-8") as handle:
                    handle.write(render(report, fmt, sources))
        except OSError as exc:  # a full disk names no file: say which one
            raise OSError(exc.errno, exc.strerror, exc.filename or str(path)) from None
        written.append(path)
    return written
