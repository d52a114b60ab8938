"""The domain-shape property test: detection that generalizes.

Hypothesis draws domains of many shapes (tests/domain_shapes.py: a tenant column on every table,
or only on the root with children scoped through foreign-key chains of depth 1-3 and EXISTS / IN
row security; integer, text and uuid tenant keys; schema-qualified tables; nullable foreign
keys; a composite-keyed leaf; a sensitive tenant dimension) with their own policies. On each:

- the fault-free reference stack's SQL for allowed requests, in every legitimate style the
  compiler has (plain, table aliases, a CTE, bound parameters, EXISTS scoping, FETCH FIRST), is
  judged clean;
- every fault operator that has a live mutation point is killed, and its first witness is
  localized to the operator's own layer with the operator's class (a fault that changes no
  artifact is an equivalent mutant, never a kill).

``HYPOTHESIS_PROFILE=thorough`` draws more shapes (the CI default keeps it to a few tens of
seconds).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from policystrata.bench.cases import BenchCase
from policystrata.bench.generate import _Drawer
from policystrata.bench.runner import Runner
from policystrata.check import Checker, load_rules
from policystrata.engine import Program
from policystrata.model import load_domain
from policystrata.stack.compiler import STYLES, CompileError
from policystrata.stack.faults import OPERATORS
from policystrata.stack.pipeline import Request, run_stack
from tests.domain_shapes import Shape, shapes, write_domain

# a failing shape is reported as drawn (shrinking a domain takes minutes and the shape printed
# with the assertion already says what it is)
settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
settings.register_profile(
    "thorough", max_examples=80, deadline=None, database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

_PROGRAM: list[Program] = []


def program() -> Program:
    if not _PROGRAM:
        _PROGRAM.append(load_rules())
    return _PROGRAM[0]


def runner_for(shape: Shape, root: Path) -> Runner:
    domain = load_domain(write_domain(shape, root))
    return Runner(Checker(domain, program=program()), minimize=False)


def allowed_requests(runner: Runner, rng: random.Random, n: int) -> list[Request]:
    """Requests the fault-free validator allows (drawn across the policy)."""
    drawer = _Drawer(runner.domain, rng)
    out: list[Request] = []
    for _ in range(n * 20):
        req = drawer.request(allowed_bias=1.0)
        try:
            run = run_stack(runner.domain, req)
        except CompileError:
            continue  # e.g. dimensions on unrelated tables: the runner calls such a case invalid
        if run.sql is not None:
            out.append(req)
        if len(out) == n:
            break
    return out


def describe(shape: Shape) -> str:
    tables = ", ".join(
        f"{t.name}({'tenant' if t.tenant_column else 'fk'}{', nullable' if t.nullable_fk else ''})"
        for t in shape.tables
    )
    return (
        f"{shape.key_type} key {shape.tenant_col}, "
        f"{'every table' if shape.every_table else 'root only'}, "
        f"{'qualified' if shape.qualified else 'bare'}, policy {shape.exists_style} on "
        f"{shape.setting}: {tables}"
    )


@pytest.mark.slow
@settings(settings.get_profile(PROFILE))
@given(shape=shapes(), seed=st.integers(0, 2**16))
def test_every_shape_keeps_controls_clean_and_kills_every_live_fault(
    shape: Shape, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    runner = runner_for(shape, tmp_path_factory.mktemp("shape") / "domain")
    rng = random.Random(seed)
    what = describe(shape)
    # the session setting the database sets is the one the shape's policies read
    assert runner.checker.tenant_settings() == (shape.setting,), what

    # fault-free controls, every legitimate style
    requests = allowed_requests(runner, rng, 3)
    assert requests, f"no allowed request compiles on {what}"
    index = 0
    for req in requests:
        for style in STYLES:
            case = BenchCase(index, f"control_{index}", req.principal, req.query, style=style)
            index += 1
            rec = runner.evaluate(case).record
            assert rec["status"] == "clean", (what, style, rec["ir"], rec.get("checks"), rec)

    # every operator with a live mutation point is killed at its own layer
    drawer = _Drawer(runner.domain, rng)
    for op in OPERATORS.values():
        found = None
        for attempt in range(40):
            req = drawer.near_miss() if attempt % 2 else drawer.request()
            req = Request(req.principal, req.query, rng.choice(STYLES))
            try:
                canonical = run_stack(runner.domain, req)
            except CompileError:
                continue  # a request the stack cannot build here (invalid, never a crash)
            if op.live_at(runner.domain, req, canonical):
                found = req
                break
        if found is None:
            continue  # no mutation point on this shape (e.g. no legacy column): stillborn
        case = BenchCase(
            index, f"{op.id}_{index}", found.principal, found.query, mutation=op.id,
            style=found.style, expected_class=op.witness_class, expected_surface=op.surface,
        )  # fmt: skip
        index += 1
        rec = runner.evaluate(case).record
        assert rec["status"] in ("killed", "equivalent"), (what, op.id, rec)
        if rec["status"] == "killed":
            assert rec["localized"] == op.surface, (what, op.id, rec["ir"], rec["checks"])
            assert op.witness_class in rec["classes"], (what, op.id, rec["ir"], rec["checks"])
