"""The benchmark harness's bookkeeping (benchmarks/harness.py): which targets a run measured,
met or missed by how much, and why (the measured workload's largest stages)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("harness", ROOT / "benchmarks" / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness"] = module
    spec.loader.exec_module(module)
    return module


def _pair(ratio: float, cpu: float, stages: dict[str, float], units: int) -> dict:
    return {
        "kind": "pair",
        "ratio_wall": ratio,
        "unit_count": units,
        "load_average_before": 0.1,
        "name": "x",
        "b_label": "published",
        "ours": {"wall_s": units / 500, "cpu_s": cpu, "rss_mb": 120.0, "stages_cpu_s": stages},
        "b": {"wall_s": 1.0},
    }


def test_targets_say_met_or_missed_by_how_much_and_why() -> None:
    h = _harness()
    rows = {
        "run_generated_5000": _pair(8.0, 100.0, {"engine": 60.0, "proofs": 10.0, "io": 1.0}, 5000),
        "scan_10000": _pair(2.0, 20.0, {"lowering": 5.0}, 10000),
        "pytest": {"kind": "pytest", "wall_s": 250.0, "summary": "1250 passed"},
        "proof_ms": {"kind": "proof", "median_ms": 0.8, "prove_median_ms": 0.5},
    }
    got = {t["target"]: t for t in h.targets(rows)}
    run = got["run generated 5000 (minimization, proofs checked) / published"]
    assert (run["met"], run["missed_by_x"]) == (False, 2.67)
    assert run["why"].startswith("our CPU 100.0 s: engine 60.0 s (60%), proofs 10.0 s (10%)")
    scan = got["scan_10000: traces/s end to end"]
    assert (scan["value"], scan["met"], scan["missed_by_x"]) == (500.0, False, 2.0)
    assert "lowering 5.0 s (25%)" in scan["why"]
    assert got["`uv run pytest` on a fresh clone (wall)"]["met"] is True
    proof = got["proof construction + independent check, median per witness"]
    assert proof["met"] is True and proof["why"] == ""
    # a target whose workload did not run is not reported (never as met)
    assert not any(t.startswith("run generated 5000 --no-minimize") for t in got)


def test_markdown_has_a_why_column_and_the_pytest_line() -> None:
    h = _harness()
    rows = [
        {**_pair(8.0, 100.0, {"engine": 60.0}, 5000), "name": "run_generated_5000", "pairs": 5},
        {"name": "pytest", "kind": "pytest", "wall_s": 250.0, "summary": "1250 passed"},
    ]
    result = {
        "command": "python benchmarks/harness.py --targets",
        "machine": {
            "commit": "abc",
            "cpu_count": 2,
            "cpu": "x",
            "python": "3.11",
            "load_average_at_start": 0.1,
        },
        "pairs": 5,
        "workloads": rows,
        "targets": h.targets({r["name"]: r for r in rows}),
    }
    md = h.render_md(result)
    assert "| target | value | goal | met | why (when missed) |" in md
    assert "no (missed by 2.67×) | our CPU 100.0 s: engine 60.0 s (60%) |" in md
    assert "`uv run pytest` on a fresh clone: 250.0 s (1250 passed)." in md
    assert h.TARGET_WORKLOADS[-1] == "pytest"


def test_child_peak_rss_is_its_own_not_the_harness(tmp_path: Path) -> None:
    """A measured child's peak RSS does not start from the harness's: after a (fresh, small)
    harness process has held 300 MB and freed it, a trivial child still reports a small peak
    (fork, not vfork); output trees are digested without reading a file whole."""
    path = str(ROOT / "benchmarks" / "harness.py")
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('harness', {path!r})\n"
        "h = importlib.util.module_from_spec(spec); sys.modules['harness'] = h\n"
        "spec.loader.exec_module(h)\n"
        "ballast = bytearray(300 * 1024 * 1024)\n"
        "ballast[::4096] = b'x' * len(ballast[::4096])\n"
        "del ballast\n"
        "print(h.run_child([sys.executable, '-c', 'pass'], profile=False, out=None).rss_mb)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert float(done.stdout.strip()) < 150, done.stdout
    h = _harness()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"1" * 3_000_000)
    first = h._tree_digest(tmp_path / "a")
    assert first == h._tree_digest(tmp_path / "a")
    (tmp_path / "a" / "f").write_bytes(b"1" * 2_999_999 + b"2")
    assert h._tree_digest(tmp_path / "a") != first


def test_run_takes_counts_above_the_published_limit() -> None:
    """The RSS target's workload (`run --count 50000`) is accepted: no upper bound on --count."""
    import click

    from policystrata.cli import main

    run = main.get_command(click.Context(main), "run")
    assert run is not None
    count = next(p for p in run.params if p.name == "count")
    assert isinstance(count.type, click.IntRange)
    assert count.type.min == 1 and count.type.max is None
