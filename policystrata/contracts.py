"""Which responsibility and obligation names the rules know.

A surface contract in ``surfaces.yaml`` is not decoration: each responsibility and obligation
it names must be one that some rule in ``rules/`` checks, otherwise it is a load error. A rule
refers to a name either directly (``responsible(compiler, preserve_tenant_scope_predicates)``)
or through a variable bound by a ground fact table (``deny_reason_duty(R, Duty),
responsible(validator, Duty)`` with ``deny_reason_duty(row_budget_exceeded,
enforce_query_budgets).``). Both count.

A rule whose *head* is a contract fact (``responsible(S, Ours) :- responsible(S, P),
responsibility_alias(P, Ours).``, rules/vocabulary.dl) does not check anything: it maps a name
onto another. The name it maps (``P``) is known only when the name it maps it onto (``Ours``) is
known, so a published name counts as checked exactly when one of our checked duties is what it
means.

>>> from policystrata.engine import parse_program
>>> prog = parse_program('''
... .decl responsible(surface, responsibility)
... .decl accepts_obligation(surface, obligation)
... .decl alias(published, ours)
... duty(limit_check, enforce_query_budgets).
... f(C) :- duty(C, D), responsible(validator, D), accepts_obligation(compiler, tenant_scope).
... responsible(S, O) :- responsible(S, P), alias(P, O).
... alias(bind_budget, enforce_query_budgets).
... alias(do_nothing_checked, not_a_duty).
... ''', source="x.dl")
>>> contract_names(prog)
(['bind_budget', 'enforce_query_budgets'], ['tenant_scope'])
"""

from __future__ import annotations

from collections.abc import Iterator

from policystrata.engine import Program
from policystrata.engine.ast import Atom, ConstTerm, Negative, Positive, Rule, Var

#: predicate -> argument position that holds a contract name, and which kind of name it is.
CONTRACT_ARGS = {
    "responsible": (1, "responsibility"),
    "accepts_obligation": (1, "obligation"),
    "emits_obligation": (1, "obligation"),
    "transition_obligation": (0, "obligation"),
}

Ground = dict[str, list[tuple[object, ...]]]


def _ground_tables(program: Program) -> Ground:
    ground: Ground = {}
    for rule in program.rules:
        if not rule.body and all(isinstance(a, ConstTerm) for a in rule.head.args):
            values = tuple(a.value for a in rule.head.args if isinstance(a, ConstTerm))
            ground.setdefault(rule.head.pred, []).append(values)
    return ground


def _body_atoms(rule: Rule) -> list[Atom]:
    return [lit.atom for lit in rule.body if isinstance(lit, Positive | Negative)]


def _bindings(atoms: list[Atom], ground: Ground) -> Iterator[dict[Var, object]]:
    """Variable bindings from each ground-table row that matches a body atom's constants."""
    for atom in atoms:
        if atom.pred in CONTRACT_ARGS:
            continue
        for row in ground.get(atom.pred, []):
            if len(row) != len(atom.args):
                continue
            env: dict[Var, object] = {}
            ok = True
            for term, value in zip(atom.args, row, strict=True):
                if isinstance(term, ConstTerm):
                    ok = ok and term.value == value
                elif not term.anon:
                    ok = ok and env.setdefault(term, value) == value
            if ok:
                yield env


def _value(term: object, env: dict[Var, object]) -> object:
    if isinstance(term, ConstTerm):
        return term.value
    return env.get(term) if isinstance(term, Var) else None


def _contract_terms(atoms: list[Atom]) -> Iterator[tuple[str, object]]:
    """(kind, term) of every contract-name argument in the atoms."""
    for atom in atoms:
        spec = CONTRACT_ARGS.get(atom.pred)
        if spec is not None and spec[0] < len(atom.args):
            yield spec[1], atom.args[spec[0]]


def contract_names(program: Program) -> tuple[list[str], list[str]]:
    """Return (responsibilities, obligations) the program's rules check, sorted."""
    found: dict[str, set[str]] = {"responsibility": set(), "obligation": set()}
    ground = _ground_tables(program)
    derivations: list[Rule] = []
    for rule in program.rules:
        if not rule.body:
            continue
        if rule.head.pred in CONTRACT_ARGS:
            derivations.append(rule)
            continue
        atoms = _body_atoms(rule)
        for kind, term in _contract_terms(atoms):
            if isinstance(term, ConstTerm):
                found[kind].add(str(term.value))
            elif isinstance(term, Var):
                for env in _bindings(atoms, ground):
                    if term in env:
                        found[kind].add(str(env[term]))
    # A derivation makes its body's names known when its head's name is known (to a fixpoint:
    # a name may map onto a name that is itself mapped).
    changed = True
    while changed:
        changed = False
        for rule in derivations:
            atoms = _body_atoms(rule)
            head_kind, head_term = next(_contract_terms([rule.head]))
            if isinstance(head_term, ConstTerm):
                envs: list[dict[Var, object]] = [{}]
            else:
                envs = list(_bindings(atoms, ground))
            for env in envs:
                head = _value(head_term, env)
                if head is None or str(head) not in found[head_kind]:
                    continue
                for kind, term in _contract_terms(atoms):
                    name = _value(term, env)
                    if name is not None and str(name) not in found[kind]:
                        found[kind].add(str(name))
                        changed = True
    return sorted(found["responsibility"]), sorted(found["obligation"])
