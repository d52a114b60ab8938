"""Proof construction + independent proof check, per witness (CPU milliseconds).

Runs ``N`` generated cases (seed 1729) through the reference stack and the detector's engine,
then, for every ``violation`` atom, times building its proof (``Result.prove``) and checking it
(``check_proof``), as ``strata run`` does: one prover and one fact lookup per case, shared by
the case's witnesses, with the cyclic GC managed as the run manages it (``gctune``: off inside a
case, collected between cases). Prints one JSON line on stderr (the harness reads it):
``{"witnesses", "median_ms", "p90_ms", "prove_median_ms", "check_median_ms"}``.

    uv run python benchmarks/proof_bench.py 300
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policystrata.bench.generate import generate  # noqa: E402
from policystrata.bench.runner import Runner  # noqa: E402
from policystrata.check import Checker  # noqa: E402
from policystrata.engine import check_proof  # noqa: E402
from policystrata.facts import Fact, Provenance  # noqa: E402
from policystrata.gctune import between_units, tuned  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    checker = Checker.open("support_saas")
    runner = Runner(checker, minimize=False)
    prove_ms: list[float] = []
    check_ms: list[float] = []
    with tuned(managed=True):
        for case in generate(checker.domain, "generated", count=count, seed=1729):
            if case.query is None:
                continue
            _canonical, run = runner.stack_runs(case, case.query)
            if isinstance(run, str):
                continue
            c = run.to_case(
                f"case_{case.index:05d}", case.principal, case.query, Provenance("suite")
            )
            result = checker.engine.evaluate(checker.artifact_facts(c))
            lookup = result.fact_lookup
            for atom in result.atoms("violation"):
                t0 = time.process_time()
                proof = result.prove(Fact("violation", atom))
                t1 = time.process_time()
                check_proof(proof, checker.program, lookup)
                t2 = time.process_time()
                prove_ms.append((t1 - t0) * 1000)
                check_ms.append((t2 - t1) * 1000)
            between_units()
    total = sorted(p + c for p, c in zip(prove_ms, check_ms, strict=True))
    out = {
        "witnesses": len(total),
        "median_ms": round(statistics.median(total), 3),
        "p90_ms": round(total[int(len(total) * 0.9)], 3),
        "prove_median_ms": round(statistics.median(prove_ms), 3),
        "check_median_ms": round(statistics.median(check_ms), 3),
    }
    print(json.dumps(out), file=sys.stderr)


if __name__ == "__main__":
    main()
