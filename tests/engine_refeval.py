"""A naive, stratified bottom-up reference evaluator over the rule AST (a differential oracle
for the pyDatalog engine). Deliberately simple: full re-evaluation until nothing changes.

``heights`` gives each derived atom's minimal proof height (given facts 0; a rule instance is
1 + the max height of its positive premises; negations are checked against the final model).
"""

from __future__ import annotations

from typing import Any

from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Program, Rule, Var

Key = tuple[tuple[type, Any], ...]


def key(row: tuple[Any, ...]) -> Key:
    return tuple((type(v), v) for v in row)


def cmp(a: Any, op: str, b: Any) -> bool:
    same = type(a) is type(b)
    if op == "=":
        return same and a == b
    if op == "!=":
        return not (same and a == b)
    num = (int, float)
    if type(a) in num and type(b) in num:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if same and type(a) in (str, bool):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return False


def instances(rule: Rule, pos: dict[str, set[Key]], neg: dict[str, set[Key]]):
    """All head keys of rule instances: positives from ``pos``, negations against ``neg``."""
    envs: list[dict[Var, Any]] = [{}]
    for lit in rule.body:
        if isinstance(lit, Positive):
            new = []
            for env in envs:
                for k in pos.get(lit.atom.pred, ()):
                    e = dict(env)
                    ok = True
                    for t, (ty, v) in zip(lit.atom.args, k, strict=True):
                        if isinstance(t, ConstTerm):
                            ok = type(t.value) is ty and t.value == v
                        elif t in e:
                            ok = type(e[t]) is ty and e[t] == v
                        else:
                            e[t] = v
                        if not ok:
                            break
                    if ok:
                        new.append(e)
            envs = new
    out = []
    for env in envs:
        pending = [lit for lit in rule.body if not isinstance(lit, Positive)]
        ok = True
        for _ in range(len(pending) + 1):
            for lit in list(pending):
                if isinstance(lit, Comparison):
                    vals = [
                        t.value if isinstance(t, ConstTerm) else env.get(t, cmp)
                        for t in (lit.left, lit.right)
                    ]
                    if lit.op == "=" and (vals[0] is cmp) != (vals[1] is cmp):
                        var = lit.left if vals[0] is cmp else lit.right
                        env[var] = vals[1] if vals[0] is cmp else vals[0]
                    elif cmp in vals:
                        continue
                    elif not cmp(vals[0], lit.op, vals[1]):
                        ok = False
                else:
                    assert isinstance(lit, Negative)
                    pat = [
                        None
                        if isinstance(t, Var) and t.anon
                        else (t.value if isinstance(t, ConstTerm) else env[t])
                        for t in lit.atom.args
                    ]
                    for k in neg.get(lit.atom.pred, ()):
                        if all(
                            p is None or (type(p) is ty and p == v)
                            for p, (ty, v) in zip(pat, k, strict=True)
                        ):
                            ok = False
                            break
                pending.remove(lit)
        assert not pending
        if ok:
            out.append(
                key(tuple(t.value if isinstance(t, ConstTerm) else env[t] for t in rule.head.args))
            )
    return out


def evaluate(program: Program, facts: list[tuple[str, tuple[Any, ...]]]) -> dict[str, set[Key]]:
    model: dict[str, set[Key]] = {}
    for pred, args in facts:
        model.setdefault(pred, set()).add(key(args))
    for comp in program.strata:
        rules = [r for r in program.rules if r.head.pred in comp]
        while True:
            new = [(r.head.pred, k) for r in rules for k in instances(r, model, model)]
            added = False
            for pred, k in new:
                if k not in model.setdefault(pred, set()):
                    model[pred].add(k)
                    added = True
            if not added:
                break
    return model


def heights(
    program: Program, facts: list[tuple[str, tuple[Any, ...]]], model: dict[str, set[Key]]
) -> dict[tuple[str, Key], int]:
    h: dict[tuple[str, Key], int] = {}
    known: dict[str, set[Key]] = {}
    for pred, args in facts:
        known.setdefault(pred, set()).add(key(args))
        h[(pred, key(args))] = 0
    level = 0
    while True:
        level += 1
        new = [(r.head.pred, k) for r in program.rules for k in instances(r, known, model)]
        added = False
        for pred, k in new:
            if (pred, k) not in h:
                h[(pred, k)] = level
                added = True
        for pred, k in new:
            known.setdefault(pred, set()).add(k)
        if not added:
            return h
