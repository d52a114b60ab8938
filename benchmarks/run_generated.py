"""Benchmark: the 500-case generated run (cases/s, peak memory) plus detection results.

Runs each configuration in a fresh process (``strata run``) so peak memory (max RSS of the
child) is per run, and records the numbers in ``benchmarks/results/run_generated.json``.

    uv run python benchmarks/run_generated.py
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "run_generated.json"

CONFIGS = [
    ("generated_500_minimize", ["--suite", "generated", "--count", "500", "--seed", "1729"]),
    (
        "generated_500_no_minimize",
        ["--suite", "generated", "--count", "500", "--seed", "1729", "--no-minimize"],
    ),
    ("heldout_v1_500", ["--suite", "heldout_v1", "--count", "500", "--no-minimize"]),
    ("clean_controls_200", ["--suite", "clean_controls", "--count", "200", "--no-minimize"]),
    ("seeded", ["--suite", "seeded"]),
]


def run(name: str, args: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        cmd = [sys.executable, "-m", "policystrata.cli", "run", *args, "--out", str(out)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = json.loads((out / "summary.json").read_text())
    c = summary["counts"]
    return {
        "args": args,
        "cases": c["cases"],
        "distinct_cases": c["distinct_cases"],
        "seconds": round(elapsed, 2),
        "cases_per_second": round(c["cases"] / elapsed, 2),
        "peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
        "killed": c["killed"],
        "survived": c["survived"],
        "equivalent": c["equivalent"],
        "stillborn": c["stillborn"],
        "false_positive": c["false_positive"],
        "kill_rate": c["kill_rate"],
        "localization_accuracy": c["localization_accuracy"],
        "class_accuracy": c["class_accuracy"],
        "mean_fact_reduction": summary["minimization"]["mean_fact_reduction"],
        "generator": summary.get("generator"),
    }


def main() -> None:
    results = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "peak_rss_mb is the max RSS of any child so far (children run one at a time, "
        "largest first would mask later ones; the first row is the 500-case default run)",
        "runs": {name: run(name, args) for name, args in CONFIGS},
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
