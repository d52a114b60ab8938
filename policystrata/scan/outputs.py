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

import io
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from policystrata.jsondump import _enc, dumps_indented, dumps_indented_at
from policystrata.results import ScanReport, dumps_finding
from policystrata.scan.store import Tally

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
    every check that ran, with how often it passed (counted as the scan went, when the
    report's findings and checks are a scan's stores: :class:`~.store.Tally`)."""
    tally = Tally.of(report.findings, report.checks)
    db = report.database
    return {
        "schema_version": 1,
        "domain": report.domain,
        "gate": report.gate.model_dump(mode="json"),
        "records": report.records,
        "findings": tally.findings,
        **{k: dict(sorted(tally.by[k].items())) for k in Tally.FINDING_KEYS},
        "evidence_exercised": {
            "layers": dict(sorted(tally.layers.items())),
            "checks": dict(sorted(tally.checks.items())),
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
    buf = io.StringIO()
    write_format(report, fmt, buf, sources)
    return buf.getvalue()


def write_format(
    report: ScanReport, fmt: str, handle: Any, sources: dict[str, str] | None = None
) -> None:
    """One output format written to ``handle``; scan.json, findings.jsonl, SARIF and JUnit a
    finding (a testcase) at a time, never as one string (a scan keeps its findings on disk:
    :mod:`policystrata.scan.store`)."""
    if fmt == "json":
        write_json(report, handle)
    elif fmt == "jsonl":
        write_jsonl(report, handle)
    elif fmt == "sarif":
        write_sarif(report, handle, sources)
    elif fmt == "junit":
        from policystrata.report.junit import write_junit

        write_junit(report, handle)
    elif fmt == "markdown":
        from policystrata.report.markdown import to_markdown

        handle.write(to_markdown(report))
    elif fmt == "summary":
        handle.write(_dump(summary(report)))
    else:
        raise ValueError(f"unknown format {fmt}")


_MARK = "\x00policystrata-stream-{}\x00"

#: A list streamed into a document: its depth in the document and its items' texts.
Pieces = tuple[int, Callable[[], Iterable[str]]]


def _write_streamed(handle: Any, skeleton: dict[str, Any], pieces: dict[str, Pieces]) -> bool:
    """``dumps_indented`` of ``skeleton`` + "\n", where each list holding only the marker of a
    name of ``pieces`` is written with that name's items in its place, one at a time. False
    (nothing written) when a marker is also in the data itself: the caller writes the whole."""
    text = _dump(skeleton)
    if any(text.count(_enc(_MARK.format(k))) > 1 for k in pieces):
        return False
    at = 0
    while True:
        hits = [(text.find(_enc(_MARK.format(k)), at), k) for k in pieces]
        hits = [(i, k) for i, k in hits if i >= 0]
        if not hits:
            break
        i, k = min(hits)
        handle.write(text[at:i])
        depth, items = pieces[k]
        sep = ",\n" + "  " * depth
        first = True
        for piece in items():
            if not first:
                handle.write(sep)
            handle.write(piece)
            first = False
        at = i + len(_enc(_MARK.format(k)))
    handle.write(text[at:])
    return True


def write_json(report: ScanReport, handle: Any, lines: Any = None) -> None:
    """scan.json (``report.dump()`` indented) written piece by piece: the findings and the
    fuzz section's records one at a time, never the whole document as one object or one
    string (the same bytes; a test compares). With ``lines``, each finding is also written
    there as findings.jsonl has it (each finding serialized once for both files).

    >>> from policystrata.results import GateResult
    >>> r = ScanReport(version="0", config="c", domain="d", rules_digest="x",
    ...                gate=GateResult(passed=True, exit_code=0),
    ...                fuzz={"ran": True, "records": [{"record": "a", "line": None}]})
    >>> out = io.StringIO(); write_json(r, out); out.getvalue() == _dump(r.dump())
    True
    """
    records = report.fuzz.get("records")
    streamed = isinstance(records, Sequence) and bool(records)
    fuzz = {**report.fuzz, "records": [_MARK.format("records")]} if streamed else report.fuzz
    findings = [_MARK.format("findings")] if report.findings else []
    skeleton = report.model_copy(update={"findings": [], "fuzz": fuzz, "checks": []}).dump()
    skeleton["findings"] = findings

    def finding(f: Any) -> str:
        data = f.model_dump(mode="json", exclude_none=True)
        if lines is not None:
            lines.write(json.dumps(data, sort_keys=True) + "\n")
        return dumps_indented_at(data, 2)

    pieces: dict[str, Pieces] = {
        "findings": (2, lambda: (finding(f) for f in report.findings)),
        "records": (3, lambda: (dumps_indented_at(r, 3) for r in records or [])),
    }
    if not _write_streamed(handle, skeleton, pieces):  # the marker in the data itself
        handle.write(_dump(report.dump()))
        if lines is not None:
            write_jsonl(report, lines)


def write_sarif(report: ScanReport, handle: Any, sources: dict[str, str] | None = None) -> None:
    """scan.sarif written a result at a time (the same bytes as :func:`to_sarif` indented)."""
    from policystrata.report.sarif import sarif_parts, to_sarif

    log, results = sarif_parts(report, sources)
    if report.findings:
        log["runs"][0]["results"] = [_MARK.format("results")]
    pieces: dict[str, Pieces] = {
        "results": (4, lambda: (dumps_indented_at(r, 4) for r in results)),
    }
    if not _write_streamed(handle, log, pieces):
        handle.write(_dump(to_sarif(report, sources)))


def write_jsonl(report: ScanReport, handle: Any) -> None:
    """findings.jsonl written one finding at a time."""
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
            else:
                with path.open("w", encoding="utf-8") as handle:
                    write_format(report, fmt, handle, sources)
        except OSError as exc:  # a full disk names no file: say which one
            raise OSError(exc.errno, exc.strerror, exc.filename or str(path)) from None
        written.append(path)
    return written
