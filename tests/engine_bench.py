"""Throughput measurement for docs/rules.md (not a test): `uv run python tests/engine_bench.py`."""

import time

from policystrata.engine import Engine, check_proof, parse_program
from policystrata.facts import Fact, FactSet

decls = """.decl role_metric(role, metric)
.decl principal_role(p, role)
.decl principal_tenant(p, t)
.decl tenant_owned(t)
.decl role_max_rows(role, n: int)
.decl case_principal(c, p)
.decl ir_metric(c, m)
.decl ir_limit(c, n: int)
.decl sql_reads(c, s, t)
.decl sql_filter(c, s, t, col, v)
"""
rules = []
for i in range(10):
    rules.append(
        f"allowed{i}(C, M) :- case_principal(C, P), principal_role(P, R), "
        "role_metric(R, M), ir_metric(C, M)."
    )
    rules.append(
        f"over{i}(C) :- case_principal(C, P), principal_role(P, R), "
        "role_max_rows(R, N), ir_limit(C, L), L > N."
    )
    rules.append(
        f"violation(C, unscoped{i}, T) :- sql_reads(C, S, T), tenant_owned(T), "
        "case_principal(C, P), principal_tenant(P, Ten), "
        f"!sql_filter(C, S, T, tenant_id, Ten), !allowed{i}(C, nothing)."
    )
prog = parse_program(decls + "\n".join(rules), source="bench.dl")
print("rules", len(prog.rules))
policy = FactSet()
for r in range(10):
    policy.add("role_max_rows", f"r{r}", 100 * r)
    for m in range(10):
        policy.add("role_metric", f"r{r}", f"m{m}")
for p in range(50):
    policy.add("principal_role", f"p{p}", f"r{p % 10}")
    policy.add("principal_tenant", f"p{p}", f"t{p % 5}")
for t in range(20):
    policy.add("tenant_owned", f"tab{t}")


def case(i):
    c = f"c{i}"
    fs = FactSet()
    fs.add("case_principal", c, f"p{i % 50}")
    fs.add("ir_metric", c, f"m{i % 12}")
    fs.add("ir_limit", c, 50 * (i % 30))
    for s in range(3):
        fs.add("sql_reads", c, f"s{s}", f"tab{(i + s) % 25}")
        if i % 2:
            fs.add("sql_filter", c, f"s{s}", f"tab{(i + s) % 25}", "tenant_id", f"t{i % 5}")
    return fs


engine = Engine(prog, policy)
cases = [case(i) for i in range(2000)]
base = engine.fact_count()
t = time.perf_counter()
n = 0
v = 0
for r in engine.evaluate_many(cases):
    n += 1
    v += len(r.atoms("violation"))
dt = time.perf_counter() - t
print(
    f"{n / dt:.0f} cases/s ({n} cases, {v} violations), facts flat: {engine.fact_count() == base}"
)
r = engine.evaluate(cases[0])
vs = r.atoms("violation")
t = time.perf_counter()
for _ in range(50):
    r = engine.evaluate(cases[0])
    p = r.prove(Fact("violation", vs[0]))
print(f"evaluate+prove: {(time.perf_counter() - t) / 50 * 1000:.1f} ms, proof height {p.height()}")
t = time.perf_counter()
check_proof(p, prog, r.fact_lookup)
print(f"check_proof (independent model): {(time.perf_counter() - t) * 1000:.1f} ms")
