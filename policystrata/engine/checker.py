"""Static checks that run before any evaluation (pyDatalog answers wrongly, silently, on
unsafe or undefined input, and loops forever on negation through recursion).

Checks, all collected into one :class:`RuleErrors`:

* undefined predicates (neither ``.decl``'d nor a rule head) and wrong arity, with "did you mean";
* unsafe variables: a head variable, or a variable of a negation or comparison, that no positive
  body literal binds (``X = const`` and ``X = BoundVar`` bind ``X``); ``_`` in a head or comparison;
* ``@message`` placeholders that are not variables of the clause;
* cheap type errors: a constant of the wrong type in a ``.decl``'d argument, or a comparison
  of a variable bound at a typed argument with a constant of another kind (string vs number);
* negation through recursion (the cycle is printed: ``p -> !q -> p``).

Right recursion is accepted, never rejected: pyDatalog loops on right recursion over a 3+-cycle
and on some sets of several recursive rules, so the engine never hands it a recursive rule at
all (recursive components are iterated to a fixpoint by the engine, reading ``<pred>#prev``; see
:mod:`policystrata.engine.backend`). The body order given to the backend additionally puts
same-component literals first and each filter (negation, comparison) as soon as its variables
are bound. Proofs and messages always use the source order.

>>> from policystrata.engine.parser import parse_program
>>> try:
...     parse_program("p(X) :- !q(X).\\nq(X) :- p(X).\\n", source="t.dl")
... except Exception as exc:
...     print(exc)
t.dl:1: rule t.p.1: unsafe variable X in the head: bind it in a positive body literal
t.dl:1: rule t.p.1: unsafe variable X in negation !q(X): bind it in a positive body literal
t.dl:1: rule t.p.1: negation through recursion: p -> !q -> p
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from policystrata.engine.ast import (
    TYPE_OF_TAG,
    Atom,
    Comparison,
    ConstTerm,
    Literal,
    Negative,
    Positive,
    Program,
    Rule,
    Var,
)
from policystrata.engine.errors import RuleError, RuleErrors
from policystrata.errors import did_you_mean
from policystrata.facts import const_type

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KIND = {"string": "string", "int": "number", "float": "number", "bool": "bool"}
T = TypeVar("T")


def check_program(program: Program) -> None:
    """Run every static check; on success fill ``program.compiled_order`` and ``strata``."""
    errors: list[RuleError] = []
    arities = _arities(program, errors)
    for rule in program.rules:
        _check_rule(program, rule, arities, errors)
    sccs, comp = _sccs(program)
    _check_negation_cycles(program, comp, errors)
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0))
        raise RuleErrors(errors)
    program.strata = sccs
    for rule in program.rules:
        program.compiled_order[rule.index] = compile_order(rule, comp)
    program.checked = True


def _err(rule: Rule, msg: str, line: int | None = None) -> RuleError:
    return RuleError(msg, file=rule.file, line=line or rule.line, rule_id=rule.id)


def _arities(program: Program, errors: list[RuleError]) -> dict[str, int]:
    arities = {name: d.arity for name, d in program.decls.items()}
    where: dict[str, str] = {name: f".decl at {d.loc}" for name, d in program.decls.items()}
    for rule in program.rules:
        h = rule.head
        if h.pred not in arities:
            arities[h.pred] = h.arity
            where[h.pred] = f"rule head at {rule.loc}"
        elif arities[h.pred] != h.arity:
            errors.append(
                _err(
                    rule,
                    f"head {h.pred}/{h.arity} has {h.arity} argument(s) but {h.pred} has"
                    f" {arities[h.pred]} ({where[h.pred]})",
                )
            )
    return arities


def _atoms(rule: Rule) -> list[tuple[Atom, bool]]:
    out = [(rule.head, True)]
    for lit in rule.body:
        if isinstance(lit, Positive | Negative):
            out.append((lit.atom, False))
    return out


def _check_rule(
    program: Program, rule: Rule, arities: dict[str, int], errors: list[RuleError]
) -> None:
    # undefined predicates and arity
    for atom, is_head in _atoms(rule):
        if is_head:
            continue
        if atom.pred not in arities:
            hint = did_you_mean(atom.pred, arities)
            errors.append(
                _err(
                    rule,
                    f"undefined predicate {atom.pred}/{atom.arity}: neither declared with .decl"
                    f" nor defined by a rule{hint}",
                    atom.loc.line,
                )
            )
        elif arities[atom.pred] != atom.arity:
            errors.append(
                _err(
                    rule,
                    f"{atom.pred} used with {atom.arity} argument(s) but it has"
                    f" {arities[atom.pred]}",
                    atom.loc.line,
                )
            )
    # safety
    bound = bound_vars(rule)
    for v in rule.head.vars():
        if v.anon:
            errors.append(_err(rule, "anonymous variable _ in the head"))
        elif v not in bound:
            errors.append(
                _err(
                    rule,
                    f"unsafe variable {v} in the head: bind it in a positive body literal",
                )
            )
    for lit in rule.body:
        if isinstance(lit, Negative):
            for v in lit.vars():
                if not v.anon and v not in bound:
                    errors.append(
                        _err(
                            rule,
                            f"unsafe variable {v} in negation {lit}: bind it in a positive body"
                            " literal",
                            lit.loc.line,
                        )
                    )
        elif isinstance(lit, Comparison):
            for v in lit.vars():
                if v.anon:
                    errors.append(_err(rule, f"anonymous variable _ in comparison {lit}"))
                elif v not in bound:
                    errors.append(
                        _err(
                            rule,
                            f"unsafe variable {v} in comparison {lit}: bind it in a positive"
                            " body literal",
                            lit.loc.line,
                        )
                    )
    # @message placeholders
    msg = rule.message
    if msg is not None:
        names = {v.name for v in rule.variables() if not v.anon}
        for ph in _PLACEHOLDER.findall(msg):
            if ph not in names:
                errors.append(
                    _err(
                        rule,
                        f"@message placeholder {{{ph}}} is not a variable of the clause"
                        f"{did_you_mean(ph, names)}",
                    )
                )
    # types
    var_types: dict[Var, str] = {}
    for atom, _is_head in _atoms(rule):
        decl = program.decls.get(atom.pred)
        if decl is None or decl.arity != atom.arity:
            continue
        for i, (arg, typ) in enumerate(zip(atom.args, decl.arg_types, strict=True)):
            if typ == "any":
                continue
            if isinstance(arg, ConstTerm):
                actual = TYPE_OF_TAG[const_type(arg.value)]
                if actual != typ:
                    errors.append(
                        _err(
                            rule,
                            f"type error: argument {i + 1} ({decl.arg_names[i]}) of {atom.pred}"
                            f" is {typ} but {arg} is {actual}",
                            atom.loc.line,
                        )
                    )
            else:
                var_types.setdefault(arg, typ)
    for lit in rule.body:
        if not isinstance(lit, Comparison):
            continue
        for a, b in ((lit.left, lit.right), (lit.right, lit.left)):
            if isinstance(a, Var) and isinstance(b, ConstTerm) and a in var_types:
                want = _KIND[var_types[a]]
                got = _KIND[TYPE_OF_TAG[const_type(b.value)]]
                if want != got:
                    errors.append(
                        _err(
                            rule,
                            f"type error: {a} is {var_types[a]} but is compared with {got}"
                            f" {b} in {lit}",
                            lit.loc.line,
                        )
                    )


def bound_vars(rule: Rule) -> set[Var]:
    """Variables bound by positive literals, closed under ``X = const`` / ``X = Bound``."""
    bound: set[Var] = set()
    for lit in rule.body:
        if isinstance(lit, Positive):
            bound.update(lit.vars())
    changed = True
    while changed:
        changed = False
        for lit in rule.body:
            if isinstance(lit, Comparison) and lit.op == "=":
                for a, b in ((lit.left, lit.right), (lit.right, lit.left)):
                    if (
                        isinstance(a, Var)
                        and not a.anon
                        and a not in bound
                        and (isinstance(b, ConstTerm) or b in bound)
                    ):
                        bound.add(a)
                        changed = True
    return bound


def dependency_edges(program: Program) -> dict[str, list[tuple[str, bool, Rule]]]:
    """head pred -> [(body pred, negated, rule)] in file order."""
    edges: dict[str, list[tuple[str, bool, Rule]]] = {}
    for rule in program.rules:
        out = edges.setdefault(rule.head.pred, [])
        for lit in rule.body:
            if isinstance(lit, Positive | Negative):
                out.append((lit.atom.pred, isinstance(lit, Negative), rule))
    return edges


def strongly_connected(nodes: Iterable[T], succ: Callable[[T], Sequence[T]]) -> list[list[T]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit), each emitted
    after every component it reaches: dependencies first. The order is the recursive
    algorithm's (roots in ``nodes`` order, successors in ``succ`` order).

    >>> strongly_connected("abcd", {"a": "b", "b": "ac", "c": "", "d": "d"}.__getitem__)
    [['c'], ['b', 'a'], ['d']]
    """
    index: dict[T, int] = {}
    low: dict[T, int] = {}
    stack: list[T] = []
    on: set[T] = set()
    out: list[list[T]] = []
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[T, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on.add(v)
            out_edges = succ(v)
            if i < len(out_edges):
                work.append((v, i + 1))
                w = out_edges[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if work:  # v is done: its caller takes its low link
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def _sccs(program: Program) -> tuple[list[list[str]], dict[str, int]]:
    """Tarjan's SCCs over the dependency graph, dependencies first (a valid stratum order)."""
    edges = dependency_edges(program)
    nodes = list(dict.fromkeys([*program.decls, *edges]))
    for outs in edges.values():
        for q, _neg, _r in outs:
            if q not in nodes:
                nodes.append(q)
    succ = {v: [w for w, _neg, _r in outs] for v, outs in edges.items()}
    out = strongly_connected(nodes, lambda v: succ.get(v, []))
    comp_of = {p: i for i, c in enumerate(out) for p in c}
    return out, comp_of


def _check_negation_cycles(program: Program, comp: dict[str, int], errors: list[RuleError]) -> None:
    edges = dependency_edges(program)
    reported: set[tuple[str, str]] = set()
    for p, outs in edges.items():
        for q, neg, rule in outs:
            if neg and comp.get(p) == comp.get(q) and (p, q) not in reported:
                reported.add((p, q))
                path = _path(edges, comp, q, p)
                cycle = [p, f"!{q}", *path[1:]]
                errors.append(_err(rule, f"negation through recursion: {' -> '.join(cycle)}"))


def _path(
    edges: dict[str, list[tuple[str, bool, Rule]]], comp: dict[str, int], src: str, dst: str
) -> list[str]:
    """Shortest path src -> dst inside one SCC, rendered with ``!`` on negative edges."""
    prev: dict[str, tuple[str, bool] | None] = {src: None}
    queue = deque([src])
    while queue:
        v = queue.popleft()
        if v == dst:
            break
        for w, neg, _r in edges.get(v, []):
            if w not in prev and comp.get(w) == comp.get(src):
                prev[w] = (v, neg)
                queue.append(w)
    rendered: list[str] = []
    node = dst
    while True:
        step = prev.get(node)
        if step is None:
            rendered.append(node)
            break
        parent, neg = step
        rendered.append(f"!{node}" if neg else node)
        node = parent
    rendered.reverse()
    return rendered


def compile_order(rule: Rule, comp: dict[str, int]) -> tuple[int, ...]:
    """Body order for the backend: same-SCC (recursive) literals first, then the other positive
    literals, each filter as early as its variables are bound."""
    head_comp = comp.get(rule.head.pred)
    body = list(enumerate(rule.body))
    positives = [(i, lit) for i, lit in body if isinstance(lit, Positive)]
    rec = [(i, lit) for i, lit in positives if comp.get(lit.atom.pred) == head_comp]
    other = [(i, lit) for i, lit in positives if comp.get(lit.atom.pred) != head_comp]
    pending = [(i, lit) for i, lit in body if not isinstance(lit, Positive)]
    order: list[int] = []
    bound: set[Var] = set()

    def ready(lit: Literal) -> bool:
        if isinstance(lit, Negative):
            return all(v.anon or v in bound for v in lit.vars())
        assert isinstance(lit, Comparison)
        sides = [t for t in (lit.left, lit.right) if isinstance(t, Var) and t not in bound]
        return not sides or (lit.op == "=" and len(sides) == 1)

    def flush() -> None:
        progress = True
        while progress:
            progress = False
            for item in pending:
                if ready(item[1]):
                    pending.remove(item)
                    order.append(item[0])
                    bound.update(item[1].vars() if isinstance(item[1], Comparison) else [])
                    progress = True
                    break

    flush()
    for i, lit in rec + other:
        order.append(i)
        bound.update(lit.vars())
        flush()
    order.extend(i for i, _lit in pending)  # unreachable for safe rules
    return tuple(order)
