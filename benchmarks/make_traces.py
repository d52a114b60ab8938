"""Deterministic imported-trace files for the scan benchmarks, from the built-in domain.

The records are what a real application would export: the reference stack of ``support_saas``
(``policystrata/stack``) run on requests drawn across the policy — fault-free ones and ones with
one layer faulty (a dropped tenant predicate, a stale alias, a fan-out join, ...) — each giving
its SQL, the tenants it bound, the semantic IR and the release decision. A pool of distinct
requests (``--distinct``, default 300) is built first; the file then draws ``--count`` records
from it (a production export repeats its queries), each with its own id.

Only requests whose SQL carries no bound parameters and whose filters are single-valued
equalities are kept, so the published 1.1.3 CLI reads the same file (its ``semantic_ir`` is
the dict form with ``filters`` as a map of scalars, and it binds no parameters).

    uv run python benchmarks/make_traces.py --count 10000 --out /tmp/traces.jsonl

Same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policystrata.bench.generate import generate  # noqa: E402
from policystrata.ir import SemanticQuery  # noqa: E402
from policystrata.model import load_domain  # noqa: E402
from policystrata.stack.faults import OPERATORS  # noqa: E402
from policystrata.stack.pipeline import Request, run_stack  # noqa: E402

SEED = 20260701


def _ir(query: SemanticQuery) -> dict[str, Any] | None:
    """The published dict form, or None when a filter is not a single-valued equality."""
    filters: dict[str, Any] = {}
    for f in query.filters:
        if f.op != "=" or len(f.values) != 1 or f.dimension in filters:
            return None
        filters[f.dimension] = f.values[0]
    out: dict[str, Any] = {
        "metric": query.metric,
        "dimensions": list(query.dimensions),
        "filters": filters,
        "time_range": query.time_range or "last_month",
        "grain": "month",
    }
    if query.limit is not None:
        out["limit"] = query.limit
    return out


def pool(distinct: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``distinct`` trace records with pairwise different SQL texts, in a fixed order."""
    domain = load_domain("support_saas")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    # faulted and fault-free requests alternate (about half of an export is clean)
    streams = [
        generate(domain, "generated", count=distinct * 20, seed=seed),
        generate(domain, "clean_controls", count=distinct * 20, seed=seed),
    ]
    turn = 0
    while len(out) < distinct and streams:
        stream = streams[turn % len(streams)]
        turn += 1
        case = next(stream, None)
        if case is None:
            streams.remove(stream)
            continue
        if case.query is None or case.style == "params":
            continue
        ir = _ir(case.query)
        if ir is None:
            continue
        req = Request(case.principal, case.query, case.style)
        op = OPERATORS.get(case.mutation)
        run = run_stack(domain, req, op.knobs(domain, req) if op is not None else None)
        if run.sql is None or run.params or run.sql in seen:
            continue
        seen.add(run.sql)
        out.append(
            {
                "principal": case.principal,
                "tenant_ids": list(run.tenant_ids or ()),
                "semantic_ir": ir,
                "sql": run.sql,
                "release_allowed": run.release == "release",
                "source": "benchmarks/make_traces.py",
            }
        )
    return out


def write_traces(path: Path, count: int, distinct: int = 300, seed: int = SEED) -> Path:
    """Write ``count`` records drawn from :func:`pool` to ``path`` (JSON Lines)."""
    records = pool(distinct, seed)
    rng = random.Random(f"traces:{seed}:{count}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            rec = {"id": f"trace_{i + 1:06d}", **rng.choice(records)}
            handle.write(json.dumps(rec, sort_keys=True) + "\n")
    return path


def write_config(directory: Path, trace_file: str) -> Path:
    """A scan config both CLIs accept: the built-in domain and one trace file."""
    cfg = directory / "policystrata.yaml"
    cfg.write_text(
        f"version: 1\ndomain: support_saas\nsql_traces:\n  files: [{trace_file}]\n",
        encoding="utf-8",
    )
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--distinct", type=int, default=300)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    write_traces(args.out, args.count, args.distinct, args.seed)
    print(args.out)


if __name__ == "__main__":
    main()
