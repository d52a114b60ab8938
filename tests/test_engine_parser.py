"""Rule-language parser: syntax, annotations, ids, locations, typed constants, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policystrata.engine import RuleErrors, load_program, parse_program
from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Var
from policystrata.paths import rule_files

TEXT = """\
% a comment
// another comment
@doc "Principal holds the tenant."
.decl principal_tenant(principal, tenant)
.decl n(v: any)
.decl w(x: float, y: bool, z: int)

@id compiler.tenant_scope_missing
@message "query reads {T} without a tenant filter"
@severity high
@custom some.dotted.value
bad(P, T) :- principal_tenant(P, T), !n(T), T != "x", P = acme.

fact_row(manifest, 1).
fact_row("manifest", 1.0).
fact_row(m, true).
fact_row(m, "1").
bad2(P) :- principal_tenant(P, _), principal_tenant(_, P).
"""


def test_parse_structure_and_annotations():
    prog = parse_program(TEXT, source="rules/x.dl")
    decl = prog.decls["principal_tenant"]
    assert decl.doc == "Principal holds the tenant." and decl.loc.line == 4
    assert prog.decls["w"].arg_types == ("float", "bool", "int")
    rule = prog.rule("compiler.tenant_scope_missing")
    assert rule.message == "query reads {T} without a tenant filter"
    assert rule.severity == "high"
    assert rule.annotations["custom"] == "some.dotted.value"
    assert (rule.file, rule.line) == ("rules/x.dl", 12)
    pos, neg, cmp1, cmp2 = rule.body
    assert isinstance(pos, Positive) and isinstance(neg, Negative)
    assert isinstance(cmp1, Comparison) and cmp1.op == "!=" and cmp1.right == ConstTerm("x")
    assert isinstance(cmp2, Comparison) and cmp2.right == ConstTerm("acme")  # ident == string
    assert pos.atom.loc.line == 12 and pos.atom.loc.column > 0


def test_default_ids_and_typed_constants():
    prog = parse_program(TEXT, source="rules/x.dl")
    facts = prog.rules_for("fact_row")
    assert [r.id for r in facts] == [f"x.fact_row.{i}" for i in (1, 2, 3, 4)]
    values = [r.head.args[1] for r in facts]
    assert [type(v.value) for v in values if isinstance(v, ConstTerm)] == [int, float, bool, str]
    assert len(set(values)) == 4  # 1, 1.0, true, "1" are distinct
    assert facts[0].head.args[0] == facts[1].head.args[0]  # manifest == "manifest"


def test_each_underscore_is_fresh():
    prog = parse_program(TEXT, source="rules/x.dl")
    (rule,) = prog.rules_for("bad2")
    anon = [t for lit in rule.body for t in lit.vars() if isinstance(t, Var) and t.anon]
    assert len(anon) == 2 and anon[0] != anon[1]


def test_syntax_error_has_location():
    with pytest.raises(RuleErrors) as exc:
        parse_program("p(X) :- q(X)\nr(a).\n", source="rules/bad.dl")
    assert str(exc.value).startswith("rules/bad.dl:2:")
    assert "syntax error" in str(exc.value)


def test_dangling_annotation_and_duplicate_id():
    text = '.decl q(a)\n@id dup\np(X) :- q(X).\n@id dup\nr(X) :- q(X).\n@doc "x"\n'
    with pytest.raises(RuleErrors) as exc:
        parse_program(text, source="t.dl")
    msg = str(exc.value)
    assert "t.dl:5: rule dup: duplicate rule id (first used at t.dl:3)" in msg
    assert "t.dl:6: annotation(s) @doc not followed by a clause or .decl" in msg


def test_multi_file_program_and_digest(tmp_path):
    a = tmp_path / "a_decl.dl"
    b = tmp_path / "b_rules.dl"
    a.write_text(".decl edge(x, y)\n")
    b.write_text("path(X, Y) :- edge(X, Y).\n")
    prog = load_program([a, b])
    assert prog.rules[0].id == "b_rules.path.1"
    assert len(prog.digest()) == 64
    b.write_text("path(X, Y) :- edge(Y, X).\n")
    assert load_program([a, b]).digest() != prog.digest()


def test_shipped_declarations_parse():
    decls = [p for p in rule_files() if p.name in ("decl_policy.dl", "decl_case.dl")]
    prog = load_program(decls)
    assert prog.decls["role_max_rows"].arg_types == ("string", "int")
    assert prog.decls["case_param"].arg_types == ("string", "string", "any")


names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in ("true", "false")
)
consts = st.one_of(
    st.text(max_size=6),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@given(pred=names, args=st.lists(consts, max_size=4))
def test_ground_fact_round_trip(pred, args):
    from policystrata.facts import render_const

    text = f"{pred}({', '.join(render_const(a) for a in args)}).\n"
    prog = parse_program(text, source="r.dl")
    got = [t.value for t in prog.rules[0].head.args if isinstance(t, ConstTerm)]
    assert [(type(v), v) for v in got] == [(type(v), v) for v in args]
    assert parse_program(str(prog.rules[0]), source="r.dl").rules[0].head == prog.rules[0].head
