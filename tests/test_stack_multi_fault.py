"""Several faults at once (policystrata.stack.pipeline.combine_knobs, faults.fault_knobs): the
stack accepts any set of operators whose knobs do not collide, order does not matter, and each
layer's artifact is the one its own fault gives (the manifest and the DDL in force depend on
their layer's knobs alone)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.ir import parse_ir
from policystrata.model import load_domain
from policystrata.stack.faults import OPERATORS, fault_knobs
from policystrata.stack.pipeline import KnobConflict, Knobs, Request, combine_knobs, run_stack

DOMAIN = load_domain("support_saas")
REQUESTS = [
    Request("acme_analyst", parse_ir("ticket_count by region during last_month limit 100")),
    Request("acme_analyst", parse_ir("net_revenue by plan during last_fiscal_month limit 50")),
    Request("beta_analyst", parse_ir("escalated_tickets by severity during fiscal_ytd limit 100")),
    Request("acme_finance_admin", parse_ir("net_revenue by region during last_month limit 100")),
]
OPS = sorted(o for o, op in OPERATORS.items() if op.fits(DOMAIN))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    req=st.sampled_from(REQUESTS),
    ops=st.lists(st.sampled_from(OPS), min_size=2, max_size=3, unique=True),
)
def test_several_faults_apply_together_in_any_order(req: Request, ops: list[str]) -> None:
    assert req.principal in DOMAIN.policy.principals
    try:
        knobs = fault_knobs(ops, DOMAIN, req)
    except KnobConflict:
        return  # two faults on one knob: not a combination
    assert fault_knobs(list(reversed(ops)), DOMAIN, req) == knobs
    both = run_stack(DOMAIN, req, knobs)
    singles = {op: fault_knobs([op], DOMAIN, req) for op in ops}
    for op, alone in singles.items():
        assert combine_knobs(knobs, alone) == knobs  # each fault's knobs are in the combination
        single = run_stack(DOMAIN, req, alone)
        others = [k for o, k in singles.items() if o != op]
        # a layer only this fault changes gives the artifact this fault alone gives
        for layer, artifact in (("manifest", "manifest"), ("database", "ddl")):
            base = getattr(Knobs(), layer)
            if getattr(alone, layer) != base and all(getattr(k, layer) == base for k in others):
                assert getattr(both, artifact) == getattr(single, artifact), (op, layer)


def test_two_faults_on_one_knob_conflict() -> None:
    req = REQUESTS[0]
    a = OPERATORS["validator_denies_allowed_dimension"].knobs(DOMAIN, req)
    other = Knobs(validator=type(a.validator)(deny_dimension="__another__"))
    with pytest.raises(KnobConflict, match=r"validator\.deny_dimension"):
        combine_knobs(a, other)
