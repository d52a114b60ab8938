"""dbt measure and filter expressions -> the aggregate and predicates they compute, parsed with
the SQL parser (:mod:`policystrata.sql.adapter`), in the form of the policy's
``metric_agg`` / ``metric_filter`` facts so that rules compare like with like.

A measure is ``agg`` over ``expr`` (default: the column named like the measure):

- ``agg`` is mapped to the SQL aggregate it computes: ``sum``, ``count``, ``count_distinct``
  (``count`` with DISTINCT), ``average`` (``avg``), ``min``, ``max``, ``median``,
  ``percentile``; ``sum_boolean`` of a condition counts the rows where it holds
  (``count(*)`` with the condition as filter);
- ``expr`` is a column, a constant (``count`` / ``sum`` of ``1`` count rows: ``*``), or
  ``CASE WHEN <condition> THEN <column or 1> [ELSE NULL] END`` (``ELSE 0`` under ``sum``), which
  is the column with the condition as the aggregate's filter, as in
  ``count(distinct id) filter (where escalated)``.

Anything else (arithmetic, functions, several WHEN branches) is not one aggregate of one column:
:class:`Unlowerable` says why, and the metric is reported as not compared.

>>> a = measure_aggregate("count_distinct", "case when escalated then id end")
>>> a.func, a.distinct, a.column, [(p.column, p.op, p.value) for p in a.preds]
('count', True, 'id', [('escalated', '=', True)])
>>> measure_aggregate("sum_boolean", "is_refunded").column
'*'
>>> try:
...     measure_aggregate("sum", "amount * 2")
... except Unlowerable as exc:
...     print(exc)
`amount * 2` is not a column, a constant or CASE WHEN condition THEN column END
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from policystrata.facts import Const
from policystrata.lower.sql.predicate_extract import GUARANTEED, extract_predicates
from policystrata.sql.adapter import SqlglotError, exp, ident_name, parse_expression

#: MetricFlow ``agg`` -> (SQL aggregate, DISTINCT).
AGGREGATES: dict[str, tuple[str, bool]] = {
    "sum": ("sum", False),
    "count": ("count", False),
    "count_distinct": ("count", True),
    "average": ("avg", False),
    "min": ("min", False),
    "max": ("max", False),
    "median": ("median", False),
    "percentile": ("percentile", False),
    "sum_boolean": ("count", False),
}


class Unlowerable(ValueError):
    """An expression that is not lowered to comparable facts; the message says why."""


@dataclass(frozen=True)
class Pred:
    """A guaranteed predicate ``table.column op value`` (``table`` empty: the semantic model's
    own table)."""

    table: str
    column: str
    op: str
    vkind: str
    value: Const


@dataclass
class Aggregate:
    """What a measure computes: ``func(DISTINCT? column) FILTER (WHERE preds)``."""

    func: str
    distinct: bool
    column: str  # "*" for a row count
    preds: list[Pred] = field(default_factory=list)


def parse(text: str, what: str) -> exp.Expr:
    """Parse a dbt SQL expression; a parse error is :class:`Unlowerable`."""
    try:
        tree = parse_expression(text)
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unlowerable(f"{what} `{text}` is not SQL the parser reads: {first}") from None
    if tree is None:
        raise Unlowerable(f"{what} is empty")
    return tree


def columns_read(text: str) -> list[str]:
    """The columns an expression reads, in order of appearance.

    >>> columns_read("date_trunc('month', created_at)"), columns_read("Region")
    (['created_at'], ['region'])
    """
    tree = parse(text, "expr")
    out: list[str] = []
    for col in tree.find_all(exp.Column):
        name = ident_name(col.this)
        if name not in out:
            out.append(name)
    return out


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _is_null(node: exp.Expr | None) -> bool:
    return node is None or isinstance(_unwrap(node), exp.Null)


def _is_number(node: exp.Expr | None, value: str | None = None) -> bool:
    node = _unwrap(node) if node is not None else None
    if not isinstance(node, exp.Literal) or node.is_string:
        return False
    return value is None or node.this == value


def condition_preds(cond: exp.Expr, what: str) -> list[Pred]:
    """The guaranteed predicates of a condition on literal values (a boolean column alone is
    ``= true``), with the table its columns name (empty when unqualified).

    >>> [(p.column, p.op, p.value) for p in condition_preds(parse("status = 'paid'", ""), "")]
    [('status', '=', 'paid')]
    """
    out = []
    for p in extract_predicates(cond):
        if p.strength != GUARANTEED or p.vkind not in ("literal", "null"):
            continue
        qual = p.column.args.get("table")
        out.append(
            Pred(
                ident_name(qual) if qual else "", ident_name(p.column.this), p.op, p.vkind, p.value
            )
        )
    if not out:
        raise Unlowerable(f"{what} `{cond.sql()}` has no condition on a column and a value")
    return out


def measure_aggregate(agg: str, expr: str) -> Aggregate:
    """The aggregate a measure computes (see the module docstring)."""
    if agg not in AGGREGATES:
        raise Unlowerable(f"agg {agg} has no SQL aggregate here")
    func, distinct = AGGREGATES[agg]
    tree = _unwrap(parse(expr, "expr"))
    if agg == "sum_boolean":
        return Aggregate(func, False, "*", condition_preds(tree, "the sum_boolean expr"))
    preds: list[Pred] = []
    if isinstance(tree, exp.Case) and tree.this is None and len(tree.args.get("ifs") or []) == 1:
        branch = tree.args["ifs"][0]
        default = tree.args.get("default")
        if _is_null(default) or (func == "sum" and _is_number(default, "0")):
            preds = condition_preds(branch.this, "the CASE condition")
            tree = _unwrap(branch.args["true"])
    if isinstance(tree, exp.Column) and not isinstance(tree.this, exp.Star):
        return Aggregate(func, distinct, ident_name(tree.this), preds)
    if isinstance(tree, exp.Star) or (
        func in ("count", "sum") and not distinct and _is_number(tree, "1")
    ):
        # count(*), count(1) and sum(1) count rows
        return Aggregate("count", False, "*", preds)
    if func == "count" and not distinct and _is_number(tree):
        return Aggregate("count", False, "*", preds)
    raise Unlowerable(
        f"`{expr}` is not a column, a constant or CASE WHEN condition THEN column END"
    )


#: Resolves a Jinja query item of a filter (``Dimension('ticket__escalated')``) to the
#: expression it stands for, qualified with its table; None when it cannot be resolved.
Resolver = Callable[[object], "tuple[str, exp.Expr] | None"]


def filter_preds(template: str, resolve: Resolver) -> list[Pred]:
    """The guaranteed predicates of a MetricFlow filter (a Jinja template such as
    ``{{ Dimension('ticket__escalated') }} = true``).

    The template is rendered in dbt-semantic-interfaces' own sandbox with its object-builder
    functions (``Dimension``, ``TimeDimension``, ``Entity``, ``Metric``); each query item becomes a
    placeholder column, the SQL is parsed, and each placeholder is replaced by the expression
    ``resolve`` gives for the item (its columns qualified with their table).
    """
    from dbt_semantic_interfaces.parsing.text_input.rendering_helper import (
        ObjectBuilderJinjaRenderHelper,
    )
    from dbt_semantic_interfaces.parsing.text_input.ti_processor import (
        ObjectBuilderItemDescriptionProcessor,
    )
    from dbt_semantic_interfaces.parsing.text_input.valid_method import (
        ConfiguredValidMethodMapping,
    )
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    items: list[object] = []

    class Placeholders(ObjectBuilderItemDescriptionProcessor):
        def process_description(self, item_description: object) -> str:
            if item_description not in items:
                items.append(item_description)
            return f"strata_item_{items.index(item_description)}"

    helper = ObjectBuilderJinjaRenderHelper(
        description_processor=Placeholders(),
        valid_method_mapping=ConfiguredValidMethodMapping.DEFAULT_MAPPING,
    )
    try:
        sql = (
            SandboxedEnvironment(undefined=StrictUndefined)
            .from_string(template)
            .render(
                Dimension=helper.get_function_for_dimension(),
                TimeDimension=helper.get_function_for_time_dimension(),
                Entity=helper.get_function_for_entity(),
                Metric=helper.get_function_for_metric(),
            )
        )
    except (TemplateError, ValueError) as exc:
        raise Unlowerable(f"filter `{template}` does not render: {exc}") from None
    tree = parse(sql, "filter")
    resolved: dict[str, tuple[str, exp.Expr]] = {}
    for i, item in enumerate(items):
        target = resolve(item)
        if target is None:
            name = getattr(item, "item_name", str(item))
            raise Unlowerable(f"filter `{template}`: {name} is not an item of the semantic layer")
        resolved[f"strata_item_{i}"] = target

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            hit = resolved.get(ident_name(node.this))
            if hit is not None:
                table, expr = hit
                out = expr.copy()
                for col in [out, *out.find_all(exp.Column)]:
                    if isinstance(col, exp.Column) and not col.table:
                        col.set("table", exp.to_identifier(table))
                return out
        return node

    return condition_preds(tree.transform(substitute), "filter")
