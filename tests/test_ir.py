"""Semantic IR: text and dict forms, canonical printing, round trip, parse errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.errors import InputError
from policystrata.ir import Filter, SemanticQuery, ir_from_value, parse_ir
from policystrata.ir.query import KEYWORDS

FULL = (
    "escalated_tickets by severity, region during last_month grain month "
    "where plan = 'pro' and region in ('emea','na') limit 100"
)


def test_text_and_dict_forms_are_equal() -> None:
    from_text = parse_ir(FULL)
    from_dict = SemanticQuery.from_obj(
        {
            "metric": "escalated_tickets",
            "dimensions": ["severity", "region"],
            "filters": {"plan": "pro", "region": ["emea", "na"]},
            "time_range": "last_month",
            "grain": "month",
            "limit": 100,
        }
    )
    from_list = SemanticQuery.from_obj(
        {
            "metric": "escalated_tickets",
            "dimensions": ["severity", "region"],
            "filters": [
                {"dimension": "plan", "op": "=", "value": "pro"},
                "region in ('emea', 'na')",
            ],
            "time_range": "last_month",
            "grain": "month",
            "limit": 100,
        }
    )
    assert from_text == from_dict == from_list
    assert SemanticQuery.from_obj(from_text.to_dict()) == from_text


def test_canonical_text() -> None:
    q = parse_ir("ticket_count  LIMIT 10 where plan='pro' BY region during last_month")
    assert q.to_text() == "ticket_count by region during last_month where plan = 'pro' limit 10"
    assert parse_ir(FULL).to_text() == (
        "escalated_tickets by severity, region during last_month grain month "
        "where plan = 'pro' and region in ('emea', 'na') limit 100"
    )


def test_value_types_and_operators() -> None:
    q = parse_ir("m where a <> 1 and b >= 2.5 and c = true and d in ('x''y', -3) and e < 'z'")
    assert q.filters == (
        Filter(dimension="a", op="!=", values=(1,)),
        Filter(dimension="b", op=">=", values=(2.5,)),
        Filter(dimension="c", op="=", values=(True,)),
        Filter(dimension="d", op="in", values=("x'y", -3)),
        Filter(dimension="e", op="<", values=("z",)),
    )
    assert type(q.filters[0].values[0]) is int and type(q.filters[2].values[0]) is bool


def test_dict_form_operator_mapping_and_empty_filters() -> None:
    q = SemanticQuery.from_obj({"metric": "m", "filters": {"n": {">": 5}}})
    assert q.filters == (Filter(dimension="n", op=">", values=(5,)),)
    assert SemanticQuery.from_obj({"metric": "m", "filters": {}}).filters == ()
    assert SemanticQuery.from_obj({"metric": "m", "filters": None}).filters == ()


def test_quoted_names_round_trip() -> None:
    q = SemanticQuery(metric="by", dimensions=("odd name", 'q"x'), limit=1)
    assert q.to_text() == '"by" by "odd name", "q""x" limit 1'
    assert parse_ir(q.to_text()) == q


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("ticket_count by", "<ir>:1:16", "unexpected end of input; expected a dimension name"),
        (
            "ticket_count by region,",
            "<ir>:1:24",
            "unexpected end of input; expected a dimension name",
        ),
        ("ticket_count during", "<ir>:1:20", "unexpected end of input; expected a time range name"),
        (
            "ticket_count bye region",
            "<ir>:1:14",
            "unexpected 'bye'; expected one of 'by', 'during', 'grain', 'where', 'limit', "
            "end of input (did you mean 'by'?)",
        ),
        ("ticket_count limit ten", "<ir>:1:20", "unexpected 'ten'; expected an integer"),
        (
            "ticket_count by region;",
            "<ir>:1:23",
            "unexpected character ';'; expected one of 'by', 'during', 'grain', 'where', 'limit', "
            "',', end of input",
        ),
        (
            "ticket_count where plan = pro",
            "<ir>:1:27",
            "unexpected 'pro'; expected one of a 'quoted' string, a number, true, false "
            "(a text value is quoted: 'pro')",
        ),
        (
            "ticket_count where plan",
            "<ir>:1:24",
            "unexpected end of input; expected one of a comparison (=, !=, <, <=, >, >=), 'in'",
        ),
        ("ticket_count during a during b", "<ir>:1:23", "duplicate 'during' clause"),
        ("ticket_count by region\n  limit 5 limit 6", "<ir>:2:11", "duplicate 'limit' clause"),
        ("", "<ir>:1:1", "unexpected end of input; expected a metric name"),
    ],
)
def test_parse_errors_have_line_column_and_expected(text: str, where: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_ir(text)
    assert str(info.value) == f"{where}: {message}"


def test_parse_error_in_embedded_text_is_offset() -> None:
    with pytest.raises(InputError) as info:
        parse_ir("m\nby", source="suite.yaml", line=10)
    assert str(info.value).startswith("suite.yaml:11:3: unexpected end of input")


def test_ir_from_value() -> None:
    q = ir_from_value({"metric": "m", "limit": 5, "future_key": 1})
    assert q == parse_ir("m limit 5")
    with pytest.raises(InputError, match=r"^t\.jsonl:3: invalid semantic IR: a semantic query"):
        ir_from_value({"limit": 5}, file="t.jsonl", line=3)
    with pytest.raises(InputError, match=r"^t\.jsonl:3:5: unexpected end of input"):
        ir_from_value("m by", file="t.jsonl", line=3)
    with pytest.raises(InputError, match=r"limit must be a non-negative integer"):
        ir_from_value({"metric": "m", "limit": "10"})


def test_dict_form_rejects_unknown_keys_when_strict() -> None:
    with pytest.raises(ValueError, match="unknown key 'dims'"):
        SemanticQuery.from_obj({"metric": "m", "dims": []})


# ---- property: parse(q.to_text()) == q ----

plain = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
names = st.one_of(plain, st.text(min_size=1, max_size=8).filter(lambda s: "\r" not in s))
values = st.one_of(
    st.text(max_size=10),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
filters = st.one_of(
    st.builds(
        lambda d, op, v: Filter(dimension=d, op=op, values=(v,)),
        names,
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        values,
    ),
    st.builds(
        lambda d, vs: Filter(dimension=d, op="in", values=tuple(vs)),
        names,
        st.lists(values, min_size=1, max_size=4),
    ),
)
queries = st.builds(
    SemanticQuery,
    metric=names,
    dimensions=st.lists(names, max_size=4).map(tuple),
    filters=st.lists(filters, max_size=4).map(tuple),
    time_range=st.none() | names,
    grain=st.none() | st.sampled_from(["day", "week", "month", "quarter", "year"]) | names,
    limit=st.none() | st.integers(min_value=0, max_value=10**9),
)


def _typed(q: SemanticQuery) -> list[tuple[str, object]]:
    return [(type(v).__name__, v) for f in q.filters for v in f.values]


@settings(max_examples=300, deadline=None)
@given(queries)
def test_round_trip(q: SemanticQuery) -> None:
    text = q.to_text()
    back = parse_ir(text)
    assert back == q
    assert _typed(back) == _typed(q)  # 1, 1.0 and true stay distinct
    assert back.to_text() == text


@settings(max_examples=100, deadline=None)
@given(queries)
def test_dict_round_trip(q: SemanticQuery) -> None:
    assert SemanticQuery.from_obj(q.to_dict()) == q


def test_keywords_are_quoted_when_used_as_names() -> None:
    for kw in KEYWORDS:
        q = SemanticQuery(metric=kw, dimensions=(kw,))
        assert parse_ir(q.to_text()) == q
