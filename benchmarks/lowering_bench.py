"""SQL lowering throughput: queries/s on a deterministic 1,000-query mixed corpus.

Run: ``uv run python benchmarks/lowering_bench.py`` (writes benchmarks/results/lowering.json).
The corpus cycles through the golden queries (tests/sql_golden/queries.sql: every construct,
plus rejected / unparseable statements) and the hostile fuzz corpus, with literals varied so no
two statements are identical.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

from policystrata.lower.schema import parse_schema
from policystrata.lower.sql import lower_sql
from policystrata.paths import domains_dir
from policystrata.sql.adapter import SQLGLOT_VERSION

ROOT = Path(__file__).resolve().parent.parent


def corpus(n: int = 1000) -> list[str]:
    base: list[str] = []
    for line in (ROOT / "tests" / "sql_golden" / "queries.sql").read_text().splitlines():
        if line.strip() and not line.startswith("--"):
            base.append(line)
    for line in (ROOT / "tests" / "sql_fuzz" / "hostile.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            base.append(line.partition("\t")[2])
    out = []
    for i in range(n):
        sql = base[i % len(base)]
        out.append(sql.replace("'acme'", f"'acme{i % 7}'") if i >= len(base) else sql)
    return out


def main() -> None:
    schema = parse_schema((domains_dir() / "support_saas" / "schema.sql").read_text())
    queries = corpus()
    for q in queries[:50]:  # warm-up
        lower_sql("w", q, schema=schema)
    runs = []
    facts = findings = 0
    for _ in range(3):
        t0 = time.perf_counter()
        facts = findings = 0
        for i, q in enumerate(queries):
            r = lower_sql(f"b{i}", q, schema=schema)
            facts += len(r.facts)
            findings += len(r.findings)
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    result = {
        "benchmark": "sql_lowering",
        "queries": len(queries),
        "runs_seconds": [round(r, 4) for r in runs],
        "queries_per_second_best": round(len(queries) / best, 1),
        "queries_per_second_median": round(len(queries) / statistics.median(runs), 1),
        "facts_emitted": facts,
        "findings": findings,
        "python": sys.version.split()[0],
        "sqlglot": SQLGLOT_VERSION,
        "machine": platform.machine(),
    }
    out = ROOT / "benchmarks" / "results" / "lowering.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
