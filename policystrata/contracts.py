"""Which responsibility and obligation names the rules know.

A surface contract in ``surfaces.yaml`` is not decoration: each responsibility and obligation
it names must be one that some rule in ``rules/`` checks, otherwise it is a load error. A rule
refers to a name either directly (``responsible(compiler, preserve_tenant_scope_predicates)``)
or through a variable bound by a ground fact table (``deny_reason_duty(R, Duty),
responsible(validator, Duty)`` with ``deny_reason_duty(row_budget_exceeded,
enforce_query_budgets).``). Both count.

>>> from policystrata.engine import parse_program
>>> prog = parse_program('''
... .decl responsible(surface, responsibility)
... .decl accepts_obligation(surface, obligation)
... duty(limit_check, enforce_query_budgets).
... f(C) :- duty(C, D), responsible(validator, D), accepts_obligation(compiler, tenant_scope).
... ''', source="x.dl")
>>> contract_names(prog)
(['enforce_query_budgets'], ['tenant_scope'])
"""

from __future__ import annotations

from policystrata.engine import Program
from policystrata.engine.ast import ConstTerm, Negative, Positive, Var

#: predicate -> argument position that holds a contract name, and which kind of name it is.
CONTRACT_ARGS = {
    "responsible": (1, "responsibility"),
    "accepts_obligation": (1, "obligation"),
    "emits_obligation": (1, "obligation"),
    "transition_obligation": (0, "obligation"),
}


def contract_names(program: Program) -> tuple[list[str], list[str]]:
    """Return (responsibilities, obligations) the program's rules refer to, sorted."""
    found: dict[str, set[str]] = {"responsibility": set(), "obligation": set()}
    ground: dict[str, list[tuple[object, ...]]] = {}
    for rule in program.rules:
        if not rule.body and all(isinstance(a, ConstTerm) for a in rule.head.args):
            values = tuple(a.value for a in rule.head.args if isinstance(a, ConstTerm))
            ground.setdefault(rule.head.pred, []).append(values)
    for rule in program.rules:
        atoms = [lit.atom for lit in rule.body if isinstance(lit, Positive | Negative)]
        for atom in atoms:
            spec = CONTRACT_ARGS.get(atom.pred)
            if spec is None or spec[0] >= len(atom.args):
                continue
            pos, kind = spec
            term = atom.args[pos]
            if isinstance(term, ConstTerm):
                found[kind].add(str(term.value))
            elif isinstance(term, Var):
                for other in atoms:
                    for i, arg in enumerate(other.args):
                        if other is not atom and arg == term:
                            for row in ground.get(other.pred, []):
                                found[kind].add(str(row[i]))
    return sorted(found["responsibility"]), sorted(found["obligation"])
