"""``strata evidence --plot DIR``: the evidence as three deterministic PNG plots.

- ``kill_rate_by_operator.png``: per fault operator (rows), the kill rate of our detector and
  the catch rate of every baseline (columns) side by side, as a heatmap with the rate written in
  each cell (a blank cell: that checker had no failure of that operator to catch);
- ``witness_size_reduction.png``: each killed case's witness facts before and after
  minimization (log scales; the diagonal is "no reduction"), one colour per run;
- ``localization_confusion.png``: per-layer localization over the non-equivalent mutants: the
  layer the fault was injected into (rows, from the run's labels) against the layer the
  detector localized (columns; ``not killed`` for survivors).

Everything is read from the run directories and the baseline reports (as
:func:`policystrata.bench.evidence.evidence_markdown`); nothing is re-run.

Byte-identical renders: the Agg backend, a fixed rc context (the DejaVu Sans font matplotlib
ships, fixed figure sizes and DPI, no hash salt), no timestamps or software version in the PNG
metadata (``metadata={"Software": None}``: matplotlib writes no date into a PNG, and its
version is dropped), and every input sorted. Same inputs -> same bytes.

matplotlib is the optional extra ``policystrata[plots]`` (the default dev group installs it);
without it :func:`render_plots` raises an input error (exit 2) saying so.

>>> sorted(PLOTS)
['kill_rate_by_operator.png', 'localization_confusion.png', 'witness_size_reduction.png']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policystrata.bench.evidence import _load_report
from policystrata.bench.rundir import RunDir, read_run
from policystrata.errors import InputError

PLOTS = (
    "kill_rate_by_operator.png",
    "witness_size_reduction.png",
    "localization_confusion.png",
)

DETECTOR = "policystrata (detector)"
NOT_KILLED = "not killed"

RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.hashsalt": "policystrata",
    "path.simplify": True,
    "axes.titlesize": 10,
}
METADATA: dict[str, Any] = {"Software": None}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "--plot needs matplotlib: install the plots extra (pip install 'policystrata[plots]')"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# -- the data (plain Python, tested without matplotlib) ---------------------------------------


def detector_by_operator(runs: Sequence[RunDir]) -> dict[str, dict[str, int]]:
    """Per fault operator over the runs: ``{killed, failures}`` of the detector (failures: the
    non-equivalent mutants, killed + survived)."""
    out: dict[str, dict[str, int]] = {}
    for run in runs:
        for rec in run.traces:
            status = rec.get("accounting_status")
            if status not in ("killed", "survived"):
                continue
            op = out.setdefault(str(rec.get("mutation")), {"killed": 0, "failures": 0})
            op["failures"] += 1
            op["killed"] += int(status == "killed")
    return {k: out[k] for k in sorted(out)}


def rate_matrix(
    detector: dict[str, dict[str, int]], baselines: dict[str, Any]
) -> tuple[list[str], list[str], list[list[float | None]]]:
    """(operators, checkers, rates[operator][checker]); ``None`` where a checker had no
    failure of that operator.

    >>> rate_matrix({"op": {"killed": 1, "failures": 2}},
    ...             {"b": {"per_operator": {"op": {"caught": 2, "failures": 2}}}})
    (['op'], ['policystrata (detector)', 'b'], [[0.5, 1.0]])
    """
    ops = sorted(set(detector) | {o for b in baselines.values() for o in b["per_operator"]})
    checkers = [DETECTOR, *sorted(baselines)]
    rows: list[list[float | None]] = []
    for op in ops:
        d = detector.get(op)
        row: list[float | None] = [d["killed"] / d["failures"] if d and d["failures"] else None]
        for name in sorted(baselines):
            v = baselines[name]["per_operator"].get(op)
            row.append(v["caught"] / v["failures"] if v and v["failures"] else None)
        rows.append(row)
    return ops, checkers, rows


def witness_sizes(named: Sequence[tuple[str, RunDir]]) -> list[tuple[str, str, int, int]]:
    """(run name, task, facts before, facts after) per minimized witness, sorted."""
    out = []
    for name, run in named:
        for rec in run.traces:
            m = rec.get("minimized") or {}
            if rec.get("accounting_status") == "killed" and "facts_before" in m:
                out.append(
                    (name, str(rec.get("task")), int(m["facts_before"]), int(m["facts_after"]))
                )
    return sorted(out)


def confusion(runs: Sequence[RunDir]) -> tuple[list[str], list[str], list[list[int]]]:
    """(injected layers, localized layers + ``not killed``, counts) over the non-equivalent
    mutants whose injected layer the run labels."""
    pairs: Counter[tuple[str, str]] = Counter()
    for run in runs:
        for rec in run.traces:
            status = rec.get("accounting_status")
            expected = rec.get("expected_localized_surface")
            if status not in ("killed", "survived") or not expected:
                continue
            got = rec.get("localized_surface") if status == "killed" else None
            pairs[(str(expected), str(got or NOT_KILLED))] += 1
    rows = sorted({e for e, _ in pairs})
    cols = sorted({g for _, g in pairs} - {NOT_KILLED} | set(rows))
    if any(g == NOT_KILLED for _, g in pairs):
        cols.append(NOT_KILLED)
    return rows, cols, [[pairs[(r, c)] for c in cols] for r in rows]


# -- the renders ------------------------------------------------------------------------------


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", metadata=METADATA)
    plt.close(fig)


def _kill_rate_plot(plt: Any, ops: list[str], checkers: list[str], rows: Any, path: Path) -> None:
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(2.0 + 0.62 * len(checkers), 1.6 + 0.26 * max(len(ops), 1)))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#eeeeee")
    ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(checkers)), checkers, rotation=45, ha="right")
    ax.set_yticks(range(len(ops)), ops)
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            if v is not None:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7)
    ax.axvline(0.5, color="black", linewidth=1.5)
    ax.set_title("Kill / catch rate per fault operator (%)")
    fig.tight_layout()
    _save(plt, fig, path)


def _witness_plot(plt: Any, sizes: list[tuple[str, str, int, int]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    names = sorted({s[0] for s in sizes})
    markers = "osD^v<>"
    for k, name in enumerate(names):
        pts = [(b, a) for n, _, b, a in sizes if n == name]
        ax.scatter(
            [b for b, _ in pts],
            [a for _, a in pts],
            label=f"{name} ({len(pts)})",
            marker=markers[k % len(markers)],
            s=18,
            alpha=0.7,
        )
    top = max([b for _, _, b, _ in sizes] + [10])
    ax.plot([1, top], [1, top], color="grey", linewidth=0.8, linestyle="--", label="no reduction")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("witness facts before minimization")
    ax.set_ylabel("witness facts after minimization")
    ax.set_title("Witness size reduction (killed cases)")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    _save(plt, fig, path)


def _confusion_plot(
    plt: Any, rows: list[str], cols: list[str], counts: list[list[int]], path: Path
) -> None:
    fig, ax = plt.subplots(figsize=(1.8 + 0.8 * len(cols), 1.4 + 0.5 * max(len(rows), 1)))
    top = max([max(r) for r in counts if r] + [1])
    ax.imshow(counts or [[0]], cmap="Blues", vmin=0, vmax=top, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i, r in enumerate(counts):
        for j, v in enumerate(r):
            if v:
                colour = "white" if v > top / 2 else "black"
                ax.text(j, i, str(v), ha="center", va="center", color=colour)
    ax.set_xlabel("layer localized by the detector")
    ax.set_ylabel("layer the fault was injected into")
    ax.set_title("Per-layer localization (non-equivalent mutants)")
    fig.tight_layout()
    _save(plt, fig, path)


def render_plots(
    runs: list[tuple[str, Path]], baselines: Sequence[Path], out_dir: Path
) -> list[Path]:
    """Write the three PNGs for the named runs and baseline reports into ``out_dir``."""
    plt = _pyplot()
    import matplotlib

    named = [(name, read_run(path)) for name, path in runs]
    dirs = [r for _, r in named]
    combined: dict[str, Any] = {}
    if baselines:
        from policystrata.bench.baselines import combine

        reports = [_load_report(p, "baselines") for p in baselines]
        combined = combine([r["baselines"] for rep in reports for r in rep["runs"].values()])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / p for p in PLOTS]
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        ops, checkers, rows = rate_matrix(detector_by_operator(dirs), combined)
        _kill_rate_plot(plt, ops, checkers, rows, paths[0])
        _witness_plot(plt, witness_sizes(named), paths[1])
        _confusion_plot(plt, *confusion(dirs), paths[2])
    return paths
