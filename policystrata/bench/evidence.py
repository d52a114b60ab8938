"""``strata evidence``: Markdown tables of the evidence runs give, side by side.

Per run (named ``NAME=RUN``, or by its directory): the suite, the mutant accounting (mutants,
killed, survived, equivalent, stillborn, clean controls, false positives, kill rate,
localization), the witnesses (median bytes of the minimized witness file, median proof height)
and where the evidence stands (evidence level, suite provenance, frozen or not). With the JSON
reports of ``strata baselines --out`` and ``strata ablations --out``, their tables too.

Everything is read from the run directories and the reports; nothing is re-run. Same inputs ->
byte-identical Markdown (no clock, no absolute paths: runs are named by NAME or directory name).

>>> proof_height({"atom": {}, "premises": [{"atom": {}}, {"atom": {}, "premises": [{}]}]})
3
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policystrata.bench.rundir import RunDir, read_run
from policystrata.errors import InputError


def proof_height(node: Any) -> int:
    """Levels of a proof tree (a fact is 1)."""
    if not isinstance(node, dict):
        return 0
    kids = node.get("premises") or []
    return 1 + max((proof_height(k) for k in kids), default=0)


def parse_named(arg: str) -> tuple[str, Path]:
    """``NAME=RUN`` -> (NAME, RUN); a bare ``RUN`` is named by its directory.

    >>> parse_named("seeded=runs/s1")
    ('seeded', PosixPath('runs/s1'))
    >>> parse_named("runs/gen")
    ('gen', PosixPath('runs/gen'))
    """
    name, sep, path = arg.partition("=")
    if sep and name and "/" not in name:
        return name, Path(path)
    return Path(arg).name, Path(arg)


def _median(xs: list[int]) -> float | int | None:
    return statistics.median(xs) if xs else None


def witness_stats(run: RunDir) -> tuple[list[int], list[int]]:
    """(bytes, proof height) of each killed case's witness: the minimized witness file when
    there is one, else the case's own."""
    sizes, heights = [], []
    for rec in run.traces:
        if rec.get("accounting_status") != "killed":
            continue
        rel = (rec.get("minimized") or {}).get("witness") or rec.get("witness_path")
        path = run.path / str(rel or "")
        if not rel or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        sizes.append(len(text.encode("utf-8")))
        try:
            ws = json.loads(text).get("witnesses") or []
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
        if ws:
            heights.append(proof_height(ws[0].get("proof")))
    return sizes, heights


def run_row(name: str, run: RunDir) -> dict[str, Any]:
    """One run's evidence row."""
    s, m = run.summary, run.metadata
    counts = s.get("counts") or {}
    sizes, heights = witness_stats(run)
    frozen = m.get("benchmark_manifest_id") if m.get("detector_frozen") else None
    return {
        "name": name,
        "run": run.name,
        "domain": m.get("domain"),
        "suite": m.get("suite") or m.get("suite_file"),
        "count": m.get("generated_count"),
        "seed": m.get("generated_seed"),
        "cases": s.get("total"),
        "mutants": int(counts.get("non_equivalent_mutants", 0)) + int(counts.get("equivalent", 0)),
        "killed": s.get("killed"),
        "survived": s.get("survived"),
        "equivalent": s.get("equivalent"),
        "stillborn": counts.get("stillborn"),
        "errors": counts.get("error") or 0,
        "clean_controls": s.get("clean_controls"),
        "false_positives": s.get("false_positives"),
        "kill_rate": s.get("mutant_kill_rate"),
        "localization_accuracy": s.get("localization_accuracy"),
        "median_witness_bytes": _median(sizes),
        "median_proof_height": _median(heights),
        "witnesses": len(sizes),
        "evidence_level": m.get("evidence_level"),
        "provenance": m.get("suite_provenance"),
        "frozen": bool(m.get("detector_frozen")),
        "benchmark_manifest_id": frozen,
    }


def _load_report(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise InputError(f"not a `strata {kind} --out` report (no runs)", file=str(path))
    return data


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _signed(v: Any) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def _errors(n: int) -> str:
    """Cases the stack could not build: not mutants, not clean, shown beside the stillborn."""
    return f" (+{n} not built)" if n else ""


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def evidence_markdown(
    runs: list[tuple[str, Path]],
    baselines: Sequence[Path] = (),
    ablations: Sequence[Path] = (),
) -> str:
    """The evidence document for the named runs and the given baseline/ablation reports."""
    rows = [run_row(name, read_run(path)) for name, path in runs]
    by_dir = {r["run"]: r for r in rows}
    out = ["# Evidence", ""]
    out += [
        "## Runs",
        "",
        "| run | domain | suite | cases | mutants | killed | survived | equivalent | stillborn "
        "| clean controls | false positives | kill rate | localization |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        suite = r["suite"] if r["count"] is None else f"{r['suite']} {r['count']}, seed {r['seed']}"
        out.append(
            f"| {r['name']} | {r['domain']} | {suite} | {_cell(r['cases'])} | {r['mutants']} | "
            f"{_cell(r['killed'])} | {_cell(r['survived'])} | {_cell(r['equivalent'])} | "
            f"{_cell(r['stillborn'])}{_errors(r['errors'])} | {_cell(r['clean_controls'])} | "
            f"{_cell(r['false_positives'])} | {_pct(r['kill_rate'])} | "
            f"{_pct(r['localization_accuracy'])} |"
        )
    out += [
        "",
        "## Witnesses and evidence",
        "",
        "| run | witnesses | median witness bytes | median proof height | evidence level "
        "| provenance | frozen |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        frozen = f"yes ({r['benchmark_manifest_id']})" if r["frozen"] else "no"
        out.append(
            f"| {r['name']} | {r['witnesses']} | {_cell(r['median_witness_bytes'])} | "
            f"{_cell(r['median_proof_height'])} | {r['evidence_level']} | {r['provenance']} | "
            f"{frozen} |"
        )
    out += [
        "",
        "Mutants: faults applied (killed + survived + equivalent); stillborn faults found no "
        "mutation point and are not mutants (nor are the cases the stack could not build: "
        '"not built"). Kill rate: killed / non-equivalent mutants. '
        "Witness bytes and proof height: each killed case's minimized witness file (its own "
        "when the request could not be reduced) and its first witness's proof tree.",
    ]
    for path in baselines:
        out += _baseline_section(_load_report(path, "baselines"), path, by_dir)
    for path in ablations:
        out += _ablation_section(_load_report(path, "ablations"), path)
    return "\n".join(out) + "\n"


def _baseline_section(
    report: dict[str, Any], path: Path, by_dir: dict[str, dict[str, Any]]
) -> list[str]:
    names = sorted(report["runs"])
    out = [
        "",
        f"## Baselines over {', '.join(names)} (`{path.name}`)",
        "",
        "| checker | caught | failures | catch rate | false positives | operators missed |",
        "|---|---:|---:|---:|---:|---|",
    ]
    if all(n in by_dir for n in names):  # our detector over the same runs, for comparison
        killed = sum(int(by_dir[n]["killed"] or 0) for n in names)
        failures = killed + sum(int(by_dir[n]["survived"] or 0) for n in names)
        fp = sum(int(by_dir[n]["false_positives"] or 0) for n in names)
        ctl = sum(int(by_dir[n]["clean_controls"] or 0) for n in names)
        rate = killed / failures if failures else None
        out.append(
            f"| **policystrata (detector)** | {killed} | {failures} | {_pct(rate)} | "
            f"{fp}/{ctl} | - |"
        )
    for name, s in (report.get("combined") or {}).items():
        missed = s.get("missed_operators") or []
        out.append(
            f"| {name} | {s.get('caught')} | {s.get('total_failures')} | "
            f"{_pct(s.get('catch_rate'))} | {s.get('false_positives')}/{s.get('controls')} | "
            f"{', '.join(missed) if missed else 'none'} |"
        )
    not_run = report.get("not_run") or {}
    if not_run:
        out += ["", "Not run (never counted as clean):", ""]
        out += [f"- {name}: {reason}" for name, reason in sorted(not_run.items())]
    return out


def _ablation_section(report: dict[str, Any], path: Path) -> list[str]:
    out: list[str] = []
    for run, rep in report["runs"].items():
        full = rep.get("full") or {}
        out += [
            "",
            f"## Ablations over {run} ({rep.get('domain')}, {rep.get('cases')} cases; "
            f"`{path.name}`)",
            "",
            f"Full checker: kill rate {_pct(full.get('kill_rate'))}, localization "
            f"{_pct(full.get('localization_accuracy'))}, median witness "
            f"{_cell(full.get('median_witness_facts'))} facts.",
            "",
            "| ablation | kill rate | Δ kill (points) | localization | Δ loc. (points) "
            "| false positives | median witness facts | operators no longer killed |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, a in (rep.get("ablations") or {}).items():
            lost = a.get("operators_no_longer_killed") or []
            out.append(
                f"| {name} | {_pct(a.get('kill_rate'))} | {_signed(a.get('kill_rate_change'))} | "
                f"{_pct(a.get('localization_accuracy'))} | "
                f"{_signed(a.get('localization_change'))} | {_cell(a.get('false_positives'))} | "
                f"{_cell(a.get('median_witness_facts'))} | {', '.join(lost) if lost else '-'} |"
            )
    return out
