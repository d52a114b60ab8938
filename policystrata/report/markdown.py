"""Markdown renderer for PR comments: a verdict line, a findings table, and a collapsible proof
(plain-text tree from :func:`policystrata.report.terminal.witness_text`) per finding.

>>> from policystrata.results import GateResult, ScanReport
>>> report = ScanReport(version="0", config="c", domain="d", rules_digest="x",
...                     gate=GateResult(passed=True, exit_code=0))
>>> to_markdown(report).splitlines()[0]
'## PolicyStrata scan: ✅ passed'
"""

from __future__ import annotations

from policystrata.report.terminal import witness_text
from policystrata.results import ScanReport

SEVERITY_ICON = {"critical": "🟥", "high": "🟧", "medium": "🟨", "low": "🟦"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def fuzz_section(fuzz: dict[str, object]) -> list[str]:
    """The fuzz stage's counts per operator (or why it did not run).

    >>> fuzz_section({"ran": False, "reason": "--no-fuzz"})
    ['Fuzz: not run (--no-fuzz).', '']
    """
    if not fuzz:
        return []
    if not fuzz.get("ran"):
        return [f"Fuzz: not run ({fuzz.get('reason', '')}).", ""]
    totals = fuzz.get("totals") or {}
    assert isinstance(totals, dict)
    rate = fuzz.get("kill_rate")
    out = [
        f"Fuzz (seed {fuzz.get('seed')}, up to {fuzz.get('max_cases_per_trace')} mutant(s) per "
        f"clean record, {fuzz.get('records_fuzzed')} record(s)): "
        + ", ".join(f"{totals.get(k, 0)} {k}" for k in ("killed", "survived", "equivalent"))
        + f", {totals.get('stillborn', 0)} stillborn"
        + (f" · kill rate {float(str(rate)):.1%}" if rate is not None else ""),
        "",
        "| operator | killed | survived | equivalent | stillborn |",
        "|---|---|---|---|---|",
    ]
    operators = fuzz.get("operators") or {}
    assert isinstance(operators, dict)
    for op, c in operators.items():
        out.append(
            f"| `{op}` | {c['killed']} | {c['survived']} | {c['equivalent']} | {c['stillborn']} |"
        )
    return [*out, ""]


def to_markdown(report: ScanReport, max_findings: int = 200) -> str:
    """The PR-comment Markdown (deterministic)."""
    g = report.gate
    verdict = "✅ passed" if g.passed else "❌ failed"
    r = report.records
    out = [
        f"## PolicyStrata scan: {verdict}",
        "",
        f"Domain `{report.domain}` · {r.get('scanned', 0)} record(s) scanned, "
        f"{r.get('clean', 0)} clean, {r.get('with_findings', 0)} with findings, "
        f"{r.get('errors', 0)} unreadable, {r.get('skipped', 0)} skipped · "
        f"{len(report.findings)} finding(s), {g.gating} gating, {g.warnings} warning(s) · "
        f"rules `{report.rules_digest[:12]}`",
        "",
    ]
    if report.baseline is not None:
        b = report.baseline
        out += [
            f"Against baseline `{b.file}`: **{len(b.new)} new**, {len(b.unchanged)} unchanged, "
            f"{len(b.fixed)} fixed.",
            "",
        ]
    db = report.database
    if db.get("ran"):
        out += [f"Real database: {db.get('mode')} ({db.get('summary', '')}).", ""]
    out += fuzz_section(report.fuzz)
    if not report.findings:
        out.append("No findings.")
        return "\n".join(out) + "\n"
    out += [
        "| | severity | layer | class | rule | where | finding |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in report.findings[:max_findings]:
        where = f.location.file + (f":{f.location.line}" if f.location.line else "")
        mark = "" if f.gating else " (warning)"
        new = " 🆕" if f.baseline == "new" else ""
        out.append(
            f"| {SEVERITY_ICON.get(f.severity, '')}{new} | {f.severity}{mark} | {f.surface} | "
            f"{f.witness_class} | `{_cell(f.rule_id)}` | `{_cell(where)}` | {_cell(f.message)} |"
        )
    out.append("")
    for f in report.findings[:max_findings]:
        where = f.location.file + (f":{f.location.line}" if f.location.line else "")
        out += [
            "<details>",
            f"<summary><code>{f.id}</code> — {_cell(f.message)} ({where})</summary>",
            "",
            f"- **owner**: {f.owner} · **severity** {f.severity} · **confidence** "
            f"{f.confidence} · **evidence** {f.evidence_level}"
            + (f" · contained by {f.containment_layer}" if f.containment_layer else ""),
            f"- **what changed**: {_cell(f.what_changed)}",
            f"- **probable fix**: {_cell(f.probable_fix)}",
            "- **re-check**:",
            "",
            "```sh",
            f.recheck,
            "```",
            "",
        ]
        if f.witness is not None:
            out += ["```text", witness_text(f.witness).rstrip(), "```", ""]
        elif f.details:
            import json

            out += ["```json", json.dumps(f.details, indent=2, sort_keys=True), "```", ""]
        out += ["</details>", ""]
    if len(report.findings) > max_findings:
        out.append(f"… and {len(report.findings) - max_findings} more (see scan.json).")
    return "\n".join(out) + "\n"
