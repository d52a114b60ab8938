"""The one module that talks to sqlglot (pinned ``>=30,<31``).

Every sqlglot import and call of PolicyStrata goes through here, so an upgrade is one diff.
Passes use the re-exported node namespace ``exp`` for ``isinstance`` checks and the helpers
below for parsing, tokenizing, scopes, spans and identifier normalisation.

>>> stmts = split_statements("select 1;  -- x\\nselect 'a;b'")
>>> [(s.line, s.text) for s in stmts]
[(1, 'select 1'), (2, "select 'a;b'")]
>>> tree = parse_one("SELECT a.x FROM t AS a WHERE a.x = 1")
>>> node_span(tree.args["where"].this)
(29, 36)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers as _normalize
from sqlglot.optimizer.scope import Scope, ScopeType, build_scope
from sqlglot.optimizer.simplify import simplify as _simplify

__all__ = [
    "SQLGLOT_VERSION",
    "ParseError",
    "Scope",
    "ScopeType",
    "SqlglotError",
    "Statement",
    "Tok",
    "TokenError",
    "anonymous_placeholders",
    "branch_scopes",
    "build_scope",
    "data_type_name",
    "exp",
    "function_name",
    "ident_name",
    "is_call",
    "node_span",
    "normalize_identifiers",
    "parse",
    "parse_expression",
    "parse_one",
    "simplify",
    "split_statements",
    "table_name",
    "tokenize",
]

SQLGLOT_VERSION: str = sqlglot.__version__

# sqlglot logs a warning for every statement it falls back to an opaque Command for; we detect
# Commands ourselves (they are findings or are read token by token), so silence the logger.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Tok:
    """A token: its type name (sqlglot TokenType name, e.g. ``VAR``, ``STRING``, ``L_PAREN``),
    its text (string literals without quotes), 1-based line and ``[start, end)`` offsets."""

    type: str
    text: str
    line: int
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True)
class Statement:
    """One statement of a script, split on top-level ``;`` tokens (a ``;`` inside a string,
    a comment or dollar quoting is not a separator, because the tokenizer says so)."""

    text: str
    start: int
    end: int
    line: int
    tokens: tuple[Tok, ...]


def tokenize(text: str, dialect: str = "postgres") -> list[Tok]:
    """Tokenize ``text`` with the dialect's tokenizer. Raises ``TokenError``.

    >>> [(t.type, t.text) for t in tokenize("ALTER TABLE a ENABLE ROW LEVEL SECURITY")][:3]
    [('ALTER', 'ALTER'), ('TABLE', 'TABLE'), ('VAR', 'a')]
    """
    d = sqlglot.Dialect.get_or_raise(dialect)
    return [Tok(t.token_type.name, t.text, t.line, t.start, t.end + 1) for t in d.tokenize(text)]


def split_statements(text: str, dialect: str = "postgres") -> list[Statement]:
    """Split a script into statements using the tokenizer (never string matching)."""
    out: list[Statement] = []
    current: list[Tok] = []
    for tok in [*tokenize(text, dialect), Tok("SEMICOLON", ";", 0, len(text), len(text))]:
        if tok.type == "SEMICOLON":
            if current:
                start, end = current[0].start, current[-1].end
                out.append(Statement(text[start:end], start, end, current[0].line, tuple(current)))
            current = []
        else:
            current.append(tok)
    return out


def parse(text: str, dialect: str = "postgres") -> list[exp.Expr | None]:
    """Parse a script into statements (``None`` for empty statements). Raises ``ParseError`` /
    ``TokenError``."""
    return sqlglot.parse(text, read=dialect)


def parse_one(text: str, dialect: str = "postgres") -> exp.Expr:
    """Parse exactly one statement."""
    return sqlglot.parse_one(text, read=dialect)


def normalize_identifiers(tree: exp.Expr, dialect: str = "postgres") -> exp.Expr:
    """Fold unquoted identifiers the way the dialect does (PostgreSQL: to lower case), in place;
    quoted identifiers keep their case. After this, ``ST.ID`` and ``st.id`` are one name, so
    aliases, sources and column references compare as the database compares them.

    >>> normalize_identifiers(parse_one('SELECT ST.ID FROM T AS "St"')).sql()
    'SELECT st.id FROM t AS "St"'
    """
    return _normalize(tree, dialect=dialect)


def anonymous_placeholders(tree: exp.Expr, dialect: str = "postgres") -> list[exp.Placeholder]:
    """The anonymous placeholders (``?``, ``%s``) of a statement in the order they appear in its
    text, which is the order a driver binds them. sqlglot records no position for them, so each
    is marked in turn and found in the generated SQL (generation follows the clause order of
    the grammar); the tree is restored.

    >>> t = parse_one("select 1 from t where a = %s and b = ? limit %s")
    >>> [p.sql("postgres") for p in anonymous_placeholders(t)], t.sql("postgres")
    (['%s', '?', '%s'], 'SELECT 1 FROM t WHERE a = %s AND b = ? LIMIT %s')
    """
    nodes = [
        n for n in tree.walk() if isinstance(n, exp.Placeholder) and (not n.name or n.name == "?")
    ]
    if len(nodes) < 2:
        return nodes  # nothing to order (and no SQL to generate)
    saved = [dict(n.args) for n in nodes]
    try:
        for i, n in enumerate(nodes):
            n.set("jdbc", None)
            n.set("this", f"strata_anonymous_{i}_")
        text = tree.sql(dialect=dialect)
    finally:
        for n, args in zip(nodes, saved, strict=True):
            for key in ("jdbc", "this"):
                n.set(key, args.get(key))
    order = {i: text.find(f"strata_anonymous_{i}_") for i in range(len(nodes))}
    return [nodes[i] for i in sorted(order, key=lambda i: (order[i] < 0, order[i], i))]


def simplify(tree: exp.Expr) -> exp.Expr:
    """sqlglot's semantics-preserving simplifier (boolean algebra, duplicate conjuncts,
    constant folding), in place: a normal form to compare two statements by.

    >>> simplify(parse_one("select a from t where t.x = 1 and (t.x = 1)")).sql()
    'SELECT a FROM t WHERE t.x = 1'
    """
    return _simplify(tree)


def parse_expression(text: str, dialect: str = "postgres") -> exp.Expr:
    """Parse a bare (boolean) expression, e.g. the USING clause of a policy.

    >>> parse_expression("tenant_id = current_setting('app.tenant_id', true)").key
    'eq'
    """
    return sqlglot.parse_one(text, read=dialect)


def ident_name(node: exp.Expr | str | None) -> str:
    """The SQL name of an identifier: unquoted names fold to lower case (PostgreSQL rules),
    quoted names keep their case.

    >>> ident_name(exp.to_identifier("Accounts")), ident_name(exp.to_identifier("A", quoted=True))
    ('accounts', 'A')
    """
    if node is None:
        return ""
    if isinstance(node, str):
        return node.lower()
    if isinstance(node, exp.Identifier):
        return node.name if node.quoted else node.name.lower()
    if isinstance(node, exp.Column | exp.Table | exp.TableAlias):
        return ident_name(node.this) if isinstance(node.this, exp.Identifier) else node.name
    return node.name.lower()


def table_name(table: exp.Table) -> str:
    """The base-table name without schema qualification (``public.accounts`` -> ``accounts``)."""
    return ident_name(table.this)


_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "decimal": "numeric",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
    "character varying": "varchar",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
}


def data_type_name(kind: exp.Expr | None) -> str:
    """Lowercased base type of a column definition, without parameters.

    >>> data_type_name(parse_one("CREATE TABLE t (a numeric(12,2))").this.expressions[0].kind)
    'numeric'
    """
    if kind is None:
        return "unknown"
    if isinstance(kind, exp.DataType):
        base = exp.DataType(this=kind.this, nested=kind.args.get("nested", False))
        if kind.this == exp.DataType.Type.USERDEFINED:
            text = kind.sql(dialect="postgres").lower()
        else:
            text = base.sql(dialect="postgres").lower()
    else:
        text = kind.sql(dialect="postgres").lower()
    if "(" in text:
        text = text[: text.index("(")]
    text = text.strip()
    return _TYPE_ALIASES.get(text, text)


def node_span(
    node: exp.Expr, tokens: list[Tok] | tuple[Tok, ...] | None = None
) -> tuple[int, int] | None:
    """``[start, end)`` character range of a node in the parsed text, from the token positions
    sqlglot records on identifiers, literals and function names. With the statement's
    ``tokens``, the span is extended over the closing parentheses its open parentheses need."""
    lo: int | None = None
    hi: int | None = None
    for n in node.walk():
        meta: dict[str, Any] | None = getattr(n, "_meta", None)
        if not meta or "start" not in meta:
            continue
        s, e = int(meta["start"]), int(meta["end"]) + 1
        lo = s if lo is None else min(lo, s)
        hi = e if hi is None else max(hi, e)
    if lo is None or hi is None:
        return None
    if tokens:
        hi = _extend_closers(tokens, lo, hi)
        lo = _extend_keywords(tokens, lo, _LEADING_KEYWORDS.get(node.key, ()))
    return (lo, hi)


# Keywords that open a statement node before its first positioned token (sqlglot records
# positions on identifiers, not keywords): a DELETE's span starts at DELETE, not at its table.
_LEADING_KEYWORDS: dict[str, tuple[str, ...]] = {
    "delete": ("DELETE", "FROM"),
    "insert": ("INSERT", "INTO"),
    "update": ("UPDATE",),
    "merge": ("MERGE", "INTO"),
}


def _extend_keywords(
    tokens: list[Tok] | tuple[Tok, ...], lo: int, keywords: tuple[str, ...]
) -> int:
    """Move ``lo`` back over the ``keywords`` tokens directly before it (each optional)."""
    before = [t for t in tokens if t.end <= lo]
    for kw in reversed(keywords):
        if before and before[-1].type == kw:
            lo = before.pop().start
    return lo


def _extend_closers(tokens: list[Tok] | tuple[Tok, ...], lo: int, hi: int) -> int:
    """Extend ``hi`` over the ``)`` tokens that close ``(`` tokens opened inside ``[lo, hi)``."""
    depth = 0
    for t in tokens:
        if t.start < lo:
            continue
        if t.start >= hi:
            if depth > 0 and t.type == "R_PAREN":
                depth -= 1
                hi = t.end
                continue
            break
        if t.type == "L_PAREN":
            depth += 1
        elif t.type == "R_PAREN":
            depth -= 1
    return hi


def branch_scopes(scope: Scope) -> list[Scope]:
    """The branch scopes of a UNION / INTERSECT / EXCEPT scope (sqlglot 30:
    ``set_operation_scopes``; older releases called it ``union_scopes``)."""
    return list(getattr(scope, "set_operation_scopes", None) or getattr(scope, "union_scopes", []))


def walk_no_subqueries(node: exp.Expr) -> Iterator[exp.Expr]:
    """Walk a node's subtree without descending into nested SELECT / set operations."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for child in reversed(list(n.iter_expressions())):
            if isinstance(child, exp.Query):
                continue
            stack.append(child)


# ---- function calls ---------------------------------------------------------------------------

_NOT_CALLS: tuple[type[exp.Expr], ...] = (
    exp.Binary,
    exp.Connector,
    exp.Not,
    exp.Paren,
    exp.Exists,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.TryCast,
    exp.Neg,
    exp.Distinct,
)


def is_call(node: exp.Expr) -> bool:
    """A function call (not an operator, CASE or cast the parser also models as a function)."""
    return isinstance(node, exp.Func) and not isinstance(node, _NOT_CALLS)


def function_name(node: exp.Expr) -> str:
    """Lowercase name of a function call node (``pg_catalog.set_config(…)`` -> ``set_config``).

    >>> from policystrata.sql.adapter import parse_expression
    >>> [function_name(parse_expression(s)) for s in ("DATE_TRUNC('month', d)", "Foo(1)")]
    ['date_trunc', 'foo']
    """
    if isinstance(node, exp.Anonymous):
        this = node.this
        return (this.name if isinstance(this, exp.Identifier) else str(this)).lower()
    if isinstance(node, exp.Func):
        try:
            sql = node.sql(dialect="postgres")
        except Exception:  # generation can fail for exotic nodes; fall back to the node key
            return node.key.lower()
        head = sql.split("(", 1)[0].strip().lower()
        if not head or not head.replace("_", "a").replace(".", "a").isalnum():
            head = node.sql_name().lower()
        return head
    return node.key.lower()
