"""The true per-tenant values documented in docs/domain.md hold on the real seed data.

Each metric is computed by PostgreSQL as the application role under the tenant's RLS setting,
with no tenant predicate in the SQL: the numbers check the seed, the docs and the RLS policies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from policystrata.db.session import Database
from policystrata.model import load_domain

pytestmark = pytest.mark.postgres

DOC = Path(__file__).parent.parent / "docs" / "domain.md"
TENANTS = ("acme", "beta", "gamma")


def documented() -> dict[tuple[str, str], list[str]]:
    rows = {}
    for m in re.finditer(
        r"^\| (\w+) \| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", DOC.read_text(), re.M
    ):
        rows[(m.group(1), m.group(2))] = [m.group(3), m.group(4), m.group(5)]
    return rows


def test_documented_values_match_postgres(make_db: Callable[..., Database]) -> None:
    d = load_domain("support_saas")
    db = make_db((d.path / "schema.sql").read_text(), (d.path / "seed.sql").read_text())
    doc = documented()
    assert len(doc) == 15
    ranges = d.time_ranges()
    for (metric, label), expected in doc.items():
        m = d.policy.metrics[metric]
        table, col = d.metric_time_column(metric)  # type: ignore[misc]
        start, end, _ = ranges[label]
        sql = (
            f"SELECT {m.expression} AS v FROM {m.table} "
            f"WHERE {table}.{col} >= DATE '{start}' AND {table}.{col} < DATE '{end}'"
        )
        for tenant, want in zip(TENANTS, expected, strict=True):
            (value,) = db.run_app(db.vet(sql), tenant).rows[0]
            got = Decimal(str(value or 0))
            assert got.quantize(Decimal(want)) == Decimal(want), (metric, label, tenant)
