"""Boolean expression -> atomic predicates with a strength (shared by WHERE/ON/HAVING lowering
and by RLS policy expressions in schema.py).

A predicate is ``column op value``. Its *strength* is ``guaranteed`` when it holds for every row
the expression admits (it sits in the top-level conjunction, possibly through NOT with De Morgan)
and ``possible`` otherwise (under OR, under NOT of a conjunction, inside CASE / COALESCE / a
function argument). Negation flips the operator: ``NOT (t <> 'acme')`` is a guaranteed
``t = 'acme'``. ``IN`` lists give one predicate per element with op ``in``. ``BETWEEN`` gives
``>=`` and ``<=``. A column on the right is moved to the left (``'acme' = t`` -> ``t = 'acme'``).
A disjunction of equalities / IN lists on one column is that column's IN list (``t = 'a' OR
t = 'b'`` is a guaranteed ``t in ('a', 'b')``); ``c = nullif(v, w)`` compares ``c`` with ``v``; a
boolean column used as a condition is ``c = true`` (``NOT c`` is ``c != true``).

>>> from policystrata.sql.adapter import parse_expression
>>> e = parse_expression("t.tenant_id = 'acme' AND (x = 1 OR 1 = 1) AND NOT (t.r <> 'eu')")
>>> for p in extract_predicates(e):
...     print(p.column.sql(), p.op, p.vkind, repr(p.value), p.strength)
t.tenant_id = literal 'acme' guaranteed
x = literal 1 possible
t.r = literal 'eu' guaranteed
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from policystrata.facts import Const
from policystrata.sql.adapter import exp, ident_name

GUARANTEED = "guaranteed"
POSSIBLE = "possible"

_CMP: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.NullSafeEQ: "=",
    exp.NullSafeNEQ: "!=",
    exp.Like: "like",
    exp.ILike: "ilike",
}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATE = {
    "=": "!=",
    "!=": "=",
    "<": ">=",
    "<=": ">",
    ">": "<=",
    ">=": "<",
    "in": "not_in",
    "not_in": "in",
    "like": "not_like",
    "not_like": "like",
    "ilike": "not_ilike",
    "not_ilike": "ilike",
    "is_null": "is_not_null",
    "is_not_null": "is_null",
}


@dataclass(frozen=True)
class RawPred:
    """One atomic predicate before column resolution.

    ``column`` is the column node on the left; ``value_node`` the value side (for vkind
    ``column`` a Column, for ``subquery`` the query); ``node`` the comparison (for spans)."""

    column: exp.Column
    op: str
    vkind: str
    value: Const
    value_node: exp.Expr | None
    strength: str
    node: exp.Expr


ParamNamer = Callable[[exp.Expr], str]


def _default_param_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Parameter):
        return "$" + node.name
    name = node.name
    return name if name else "?"


def unwrap(node: exp.Expr) -> exp.Expr:
    """Strip parentheses and casts (``('acme')::text`` -> ``'acme'``)."""
    while isinstance(node, exp.Paren | exp.Cast | exp.TryCast):
        node = node.this
    return node


def is_setting_call(node: exp.Expr) -> bool:
    """``current_setting('name'[, missing_ok])``."""
    return isinstance(node, exp.Anonymous) and node.name.lower() == "current_setting"


def literal_value(node: exp.Expr) -> tuple[str, Const] | None:
    """A literal constant (typed: ints stay ints) or ``None``."""
    node = unwrap(node)
    if isinstance(node, exp.Neg):
        inner = literal_value(node.this)
        if inner and isinstance(inner[1], int | float) and not isinstance(inner[1], bool):
            return ("literal", -inner[1])
        return None
    if isinstance(node, exp.Boolean):
        return ("literal", bool(node.this))
    if isinstance(node, exp.Null):
        return ("null", "null")
    if isinstance(node, exp.Literal):
        if node.is_string:
            return ("literal", str(node.this))
        text = str(node.this)
        try:
            return ("literal", int(text))
        except ValueError:
            try:
                return ("literal", float(text))
            except ValueError:
                return ("literal", text)
    return None


def classify_value(
    node: exp.Expr, param_name: ParamNamer = _default_param_name, dialect: str = "postgres"
) -> tuple[str, Const, exp.Expr | None]:
    """Value side -> (vkind, value, node): literal | null | param | setting | column |
    subquery | expr.

    >>> from policystrata.sql.adapter import parse_expression
    >>> classify_value(parse_expression("current_setting('app.tenant_id', true)"))[:2]
    ('setting', 'app.tenant_id')
    """
    raw = node
    node = unwrap(node)
    while isinstance(node, exp.Nullif):
        node = unwrap(node.this)  # c = nullif(v, w) holds only where c = v
    lit = literal_value(node)
    if lit is not None:
        return (lit[0], lit[1], None)
    if isinstance(node, exp.Parameter | exp.Placeholder):
        return ("param", param_name(node), node)
    if is_setting_call(node):
        args = node.expressions
        first = literal_value(args[0]) if args else None
        return ("setting", str(first[1]) if first else args[0].sql(dialect=dialect), node)
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return ("column", ident_name(node.this), node)
    if isinstance(node, exp.Subquery | exp.Query):
        return ("subquery", "", node)
    return ("expr", raw.sql(dialect=dialect), node)


def _column_side(node: exp.Expr) -> exp.Column | None:
    node = unwrap(node)
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return node
    return None


def extract_predicates(
    cond: exp.Expr | None,
    param_name: ParamNamer = _default_param_name,
    dialect: str = "postgres",
) -> list[RawPred]:
    """All atomic predicates of a boolean expression, with strength (see module docstring).

    Subqueries are not entered (they are scopes of their own); ``IN (subquery)`` is one
    predicate with vkind ``subquery``.
    """
    out: list[RawPred] = []
    if cond is None:
        return out
    _walk(cond, True, True, out, param_name, dialect)
    return out


def _walk(
    node: exp.Expr,
    positive: bool,
    guaranteed: bool,
    out: list[RawPred],
    pn: ParamNamer,
    dialect: str,
    boolean: bool = True,
) -> None:
    while isinstance(node, exp.Paren):
        node = node.this
    if boolean and isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        # a boolean column as a condition: ``where t.escalated`` is ``t.escalated = true``
        op = "=" if positive else "!="
        strength = GUARANTEED if guaranteed else POSSIBLE
        out.append(RawPred(node, op, "literal", True, None, strength, node))
        return
    if isinstance(node, exp.And):
        g = guaranteed if positive else False
        _walk(node.this, positive, g, out, pn, dialect)
        _walk(node.expression, positive, g, out, pn, dialect)
        return
    if isinstance(node, exp.Or):
        if positive and guaranteed:
            alternatives = _same_column_alternatives(node, pn, dialect)
            if alternatives is not None:
                out.extend(alternatives)
                return
        g = guaranteed if not positive else False
        _walk(node.this, positive, g, out, pn, dialect)
        _walk(node.expression, positive, g, out, pn, dialect)
        return
    if isinstance(node, exp.Not):
        _walk(node.this, not positive, guaranteed, out, pn, dialect)
        return
    atoms = list(_atoms(node, pn, dialect))
    if atoms:
        strength = GUARANTEED if guaranteed else POSSIBLE
        for col, op, vk, val, vnode in atoms:
            if not positive:
                op = _NEGATE.get(op, "not_" + op)
            out.append(RawPred(col, op, vk, val, vnode, strength, node))
        return
    if isinstance(node, exp.Query | exp.Exists):
        return
    # anything else (CASE, COALESCE, function calls, boolean columns...): comparisons nested
    # inside can hold or not; they are only possible
    for child in node.iter_expressions():
        if isinstance(child, exp.Query):
            continue
        _walk(child, True, False, out, pn, dialect, boolean=False)


def _same_column_alternatives(node: exp.Or, pn: ParamNamer, dialect: str) -> list[RawPred] | None:
    """``c = a OR c = b OR c IN (d)`` is ``c IN (a, b, d)``: guaranteed ``in`` predicates, one
    per value, when every disjunct is an equality / IN list on the same column (else ``None``)."""
    leaves: list[exp.Expr] = []
    stack: list[exp.Expr] = [node]
    while stack:
        n = stack.pop()
        while isinstance(n, exp.Paren):
            n = n.this
        if isinstance(n, exp.Or):
            stack += [n.expression, n.this]
        else:
            leaves.append(n)
    out: list[RawPred] = []
    column = None
    for leaf in leaves:
        if not isinstance(leaf, exp.EQ | exp.In) or (
            isinstance(leaf, exp.In) and (leaf.args.get("query") or leaf.args.get("unnest"))
        ):
            return None
        atoms = list(_atoms(leaf, pn, dialect))
        if not atoms:
            return None
        for col, op, vk, val, vnode in atoms:
            if op not in ("=", "in") or vk in ("column", "subquery", "null"):
                return None
            key = col.sql(dialect=dialect)
            if column is not None and key != column:
                return None
            column = key
            out.append(RawPred(col, "in", vk, val, vnode, GUARANTEED, leaf))
    return out


def _atoms(
    node: exp.Expr, pn: ParamNamer, dialect: str
) -> Iterator[tuple[exp.Column, str, str, Const, exp.Expr | None]]:
    """The atomic predicates a single comparison node stands for (empty if it is none).
    ``IS NOT NULL`` / ``NOT LIKE`` are parsed as one node with ``negate`` set: the operator
    is negated here."""
    atoms = _plain_atoms(node, pn, dialect)
    if not node.args.get("negate"):
        yield from atoms
        return
    for col, op, vk, val, vnode in atoms:
        yield (col, _NEGATE.get(op, "not_" + op), vk, val, vnode)


def _plain_atoms(
    node: exp.Expr, pn: ParamNamer, dialect: str
) -> Iterator[tuple[exp.Column, str, str, Const, exp.Expr | None]]:
    op = _CMP.get(type(node))
    if op is not None:
        left, right = node.this, node.expression
        col = _column_side(left)
        value = right
        if col is None and op in _FLIP:
            col = _column_side(right)
            value = left
            op = _FLIP[op]
        if col is None:
            return
        if isinstance(unwrap(value), exp.Any):
            inner = unwrap(unwrap(value).this)
            if isinstance(inner, exp.Array):
                for el in inner.expressions:
                    yield (col, "in", *classify_value(el, pn, dialect))
            else:
                yield (col, "in", *classify_value(inner, pn, dialect))
            return
        yield (col, op, *classify_value(value, pn, dialect))
        return
    if isinstance(node, exp.In):
        col = _column_side(node.this)
        if col is None:
            return
        query = node.args.get("query")
        if query is not None:
            yield (col, "in", "subquery", "", query)
            return
        unnest = node.args.get("unnest")
        if unnest is not None:
            yield (col, "in", *classify_value(unnest, pn, dialect))
            return
        for el in node.expressions:
            yield (col, "in", *classify_value(el, pn, dialect))
        return
    if isinstance(node, exp.Between):
        col = _column_side(node.this)
        if col is None:
            return
        yield (col, ">=", *classify_value(node.args["low"], pn, dialect))
        yield (col, "<=", *classify_value(node.args["high"], pn, dialect))
        return
    if isinstance(node, exp.Is):
        col = _column_side(node.this)
        if col is None:
            return
        target = unwrap(node.expression)
        if isinstance(target, exp.Null):
            yield (col, "is_null", "null", "null", None)
        elif isinstance(target, exp.Boolean):
            yield (col, "=", "literal", bool(target.this), None)
        return


def is_always_true(node: exp.Expr | None) -> bool:
    """The expression admits every row: ``true``, ``1 = 1``, ``'a' = 'a'``, or a disjunction /
    conjunction built from such (an OR with one always-true disjunct is always true).

    >>> from policystrata.sql.adapter import parse_expression
    >>> is_always_true(parse_expression("tenant_id = 'a' OR 1 = 1"))
    True
    """
    if node is None:
        return False
    node = unwrap(node)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Or):
        return is_always_true(node.this) or is_always_true(node.expression)
    if isinstance(node, exp.And):
        return is_always_true(node.this) and is_always_true(node.expression)
    if isinstance(node, exp.EQ | exp.GTE | exp.LTE | exp.NullSafeEQ):
        left, right = literal_value(node.this), literal_value(node.expression)
        if left is not None and right is not None and left[0] == "literal":
            return left == right and type(left[1]) is type(right[1])
    if isinstance(node, exp.Not):
        return is_always_false(node.this)
    return False


def is_always_false(node: exp.Expr | None) -> bool:
    """``false``, ``1 = 0``, ``1 <> 1``..."""
    if node is None:
        return False
    node = unwrap(node)
    if isinstance(node, exp.Boolean):
        return not bool(node.this)
    if isinstance(node, exp.NEQ):
        left, right = literal_value(node.this), literal_value(node.expression)
        return left is not None and left == right
    if isinstance(node, exp.EQ):
        left, right = literal_value(node.this), literal_value(node.expression)
        return left is not None and right is not None and left != right
    if isinstance(node, exp.Not):
        return is_always_true(node.this)
    return False


def position_strength(root: exp.Expr, target: exp.Expr) -> tuple[bool, str]:
    """Polarity and strength of ``target`` (a node inside boolean expression ``root``):
    ``(negated, strength)`` computed like :func:`extract_predicates` does for atoms.

    >>> from policystrata.sql.adapter import parse_expression
    >>> e = parse_expression("a = 1 AND NOT EXISTS (SELECT 1) ")
    >>> position_strength(e, e.find(exp.Exists))
    (True, 'guaranteed')
    """
    path: list[exp.Expr] = []
    node: exp.Expr | None = target
    while node is not None and node is not root:
        path.append(node)
        node = node.parent
    if node is None:
        return (False, POSSIBLE)
    path.append(root)
    path.reverse()
    positive, guaranteed = True, True
    for n in path[:-1]:
        if isinstance(n, exp.Paren):
            continue
        if isinstance(n, exp.And):
            guaranteed = guaranteed if positive else False
        elif isinstance(n, exp.Or):
            guaranteed = guaranteed if not positive else False
        elif isinstance(n, exp.Not):
            positive = not positive
        else:
            guaranteed = False
    return (not positive, GUARANTEED if guaranteed else POSSIBLE)


def conjunct_atoms(cond: exp.Expr | None) -> Iterator[tuple[exp.Expr, bool, str]]:
    """Every non-boolean-connective node of a condition with ``(negated, strength)``.

    >>> from policystrata.sql.adapter import parse_expression
    >>> [(a.sql(), n, s) for a, n, s in conjunct_atoms(parse_expression("a = 1 AND (b = 2 OR c)"))]
    [('a = 1', False, 'guaranteed'), ('b = 2', False, 'possible'), ('c', False, 'possible')]
    """
    if cond is None:
        return
    stack: list[tuple[exp.Expr, bool, bool]] = [(cond, True, True)]
    while stack:
        node, positive, guaranteed = stack.pop()
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            g = guaranteed if positive else False
            stack.append((node.expression, positive, g))
            stack.append((node.this, positive, g))
        elif isinstance(node, exp.Or):
            g = guaranteed if not positive else False
            stack.append((node.expression, positive, g))
            stack.append((node.this, positive, g))
        elif isinstance(node, exp.Not):
            stack.append((node.this, not positive, guaranteed))
        else:
            yield (node, not positive, GUARANTEED if guaranteed else POSSIBLE)
