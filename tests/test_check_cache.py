"""The checker remembers the facts of an SQL text it lowered and re-keys them to each case."""

from __future__ import annotations

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.facts import Provenance
from policystrata.lower.sql import lower_sql

SQL = (
    "select a.region, count(*) from support_tickets t join accounts a on a.id = t.account_id "
    "where t.tenant_id = 'c1' and a.tenant_id = 'acme' group by 1 limit 10"
)


def test_remembered_sql_facts_equal_a_fresh_lowering_for_every_case_id():
    checker = Checker.open("support_saas")
    origin = Provenance("suite.yaml", line=3)
    for cid in ("c1", "c2", "c1"):  # 'c1' also occurs as a literal in the SQL text
        case = Case(id=cid, principal="acme_analyst", sql=SQL, origin=origin)
        got = checker.artifact_facts(case)
        fresh = lower_sql(cid, SQL, source=origin, schema=checker.domain.schema).facts
        sql_facts = {f for f in got if f.pred.startswith("sql_")}
        assert sql_facts == set(fresh)
        for f in fresh:
            assert got.provenance(f) == fresh.provenance(f)
    assert len(checker.context.sql_cache) == 1
