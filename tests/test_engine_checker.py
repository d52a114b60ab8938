"""Static checks: each error carries file:line and the rule id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policystrata.engine import RuleErrors, parse_program

DECLS = ".decl edge(a, b)\n.decl rows(t, n: int)\n"


def errors(body: str) -> str:
    with pytest.raises(RuleErrors) as exc:
        parse_program(DECLS + body, source="rules/x.dl")
    return str(exc.value)


def test_unsafe_head_variable():
    assert errors("@id c.foo\np(X, Y) :- edge(X, _).\n") == (
        "rules/x.dl:4: rule c.foo: unsafe variable Y in the head: bind it in a positive body"
        " literal"
    )


def test_unsafe_negation_and_comparison():
    msg = errors("p(X) :- edge(X, _), !edge(Y, X), Z > 1.\n")
    assert "rules/x.dl:3: rule x.p.1: unsafe variable Y in negation !edge(Y, X)" in msg
    assert "rules/x.dl:3: rule x.p.1: unsafe variable Z in comparison Z > 1" in msg


def test_equality_binds():
    parse_program(DECLS + "p(X, Y) :- edge(X, _), Y = X, Z = 3, W = Z, W != Y.\n", source="x")


def test_anonymous_in_head():
    assert "anonymous variable _ in the head" in errors("p(_) :- edge(_, _).\n")


def test_undefined_predicate_with_hint():
    msg = errors("p(X) :- edgee(X, Y).\n")
    assert (
        "rules/x.dl:3: rule x.p.1: undefined predicate edgee/2: neither declared with .decl" in msg
    )
    assert "(did you mean 'edge'?)" in msg


def test_wrong_arity():
    msg = errors("p(X) :- edge(X).\n")
    assert "rules/x.dl:3: rule x.p.1: edge used with 1 argument(s) but it has 2" in msg
    msg = errors("p(X) :- edge(X, _).\np(X, Y) :- edge(X, Y).\n")
    assert "rules/x.dl:4: rule x.p.2: head p/2 has 2 argument(s) but p has 1" in msg


def test_type_errors():
    msg = errors('p(T) :- rows(T, N), N > "ten".\n')
    assert 'rules/x.dl:3: rule x.p.1: type error: N is int but is compared with string "ten"' in msg
    msg = errors('p(T) :- rows(T, "5").\n')
    assert 'argument 2 (n) of rows is int but "5" is string' in msg


def test_message_placeholder():
    msg = errors('@message "bad {Tabel}"\np(T) :- rows(T, _).\n')
    assert "rules/x.dl:4: rule x.p.1: @message placeholder {Tabel} is not a variable" in msg


def test_negation_through_recursion_prints_cycle():
    msg = errors("p(X) :- edge(X, _), !q(X).\nq(X) :- r(X).\nr(X) :- p(X).\n")
    assert "rules/x.dl:3: rule x.p.1: negation through recursion: p -> !q -> r -> p" in msg


def test_errors_are_collected_across_rules():
    msg = errors("p(X) :- nope(X).\nq(Y) :- edge(X, _).\n")
    assert msg.count("\n") == 1


def test_right_recursion_is_rewritten_not_rejected():
    prog = parse_program(
        DECLS + "path(X, Y) :- edge(X, Y).\npath(X, Y) :- edge(X, Z), path(Z, Y).\n",
        source="x",
    )
    rule = prog.rules[1]
    assert prog.compiled_order[rule.index] == (1, 0)  # recursive literal first for the backend
    assert str(rule) == "path(X, Y) :- edge(X, Z), path(Z, Y)."  # source order kept


def test_declared_predicate_may_be_defined_by_rules():
    prog = parse_program(".decl reach(a, b)\n.decl edge(a, b)\nreach(X, Y) :- edge(X, Y).\n")
    assert prog.is_idb("reach")


@given(st.dictionaries(st.integers(0, 12), st.lists(st.integers(0, 12), max_size=4), max_size=13))
def test_strongly_connected_components_are_mutual_reachability_dependencies_first(
    graph: dict[int, list[int]],
) -> None:
    """Each component is a class of mutually reachable nodes, and it is emitted after every
    component it reaches (the order strata are evaluated in)."""
    from policystrata.engine.checker import strongly_connected

    nodes = sorted({*graph, *(w for ws in graph.values() for w in ws)})

    def reach(v: int) -> set[int]:
        seen, todo = {v}, [v]
        while todo:
            for w in graph.get(todo.pop(), []):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    comps = strongly_connected(nodes, lambda v: graph.get(v, []))
    assert sorted(v for c in comps for v in c) == nodes
    where = {v: i for i, c in enumerate(comps) for v in c}
    for v in nodes:
        r = reach(v)
        assert {w for w in nodes if where[w] == where[v]} == {w for w in r if v in reach(w)}
        assert all(where[w] <= where[v] for w in r)
