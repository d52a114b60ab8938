"""Pass ``parse``: tokenize, require exactly one statement, parse it.

A statement in parentheses is the statement (see :func:`unparenthesize`). Failures are
findings, never exceptions: a token or parse error is ``unparseable_sql``; more
than one statement (the split is done by the tokenizer, so a ``;`` inside a string, a comment
or dollar quoting does not count) is ``not_read_only``.

>>> from policystrata.lower.sql import lower_sql
>>> [str(f) for f in lower_sql("q", "select 1; commit").findings]
['not_read_only: 2 statements; exactly one SELECT is allowed at [10:16]']
>>> lower_sql("q", "select 'a;b' -- ;\\n").read_only
True
"""

from __future__ import annotations

from policystrata.lower.sql.adapter import (
    SqlglotError,
    exp,
    normalize_identifiers,
    parse,
    split_statements,
)
from policystrata.lower.sql.context import Ctx, Halt


def parse_sql(ctx: Ctx) -> None:
    """Tokenize and parse ``ctx.text`` into ``ctx.tree`` (one statement) and emit
    ``sql_present``."""
    ctx.emit("sql_present")
    try:
        statements = split_statements(ctx.text, ctx.dialect)
    except SqlglotError as e:
        reason = f"cannot tokenize: {_first_line(e)}"
        ctx.finding("unparseable_sql", reason, span=(0, len(ctx.text)))
        raise Halt from None
    if not statements:
        ctx.finding("unparseable_sql", "empty statement", span=(0, len(ctx.text)))
        raise Halt
    if len(statements) > 1:
        extra = statements[1]
        ctx.finding(
            "not_read_only",
            f"{len(statements)} statements; exactly one SELECT is allowed",
            span=(extra.start, statements[-1].end),
        )
        raise Halt
    stmt = statements[0]
    ctx.tokens = list(stmt.tokens)
    try:
        trees = [t for t in parse(ctx.text, ctx.dialect) if t is not None]
    except SqlglotError as e:
        reason = f"cannot parse: {_first_line(e)}"
        ctx.finding("unparseable_sql", reason, span=(stmt.start, stmt.end))
        raise Halt from None
    except RecursionError:
        ctx.finding("unparseable_sql", "statement nested too deeply", span=(stmt.start, stmt.end))
        raise Halt from None
    if len(trees) != 1:
        reason = f"{len(trees)} statements parsed"
        ctx.finding("unparseable_sql", reason, span=(stmt.start, stmt.end))
        raise Halt
    ctx.tree = normalize_identifiers(unparenthesize(trees[0]), ctx.dialect)
    if isinstance(ctx.tree, exp.Command):
        ctx.finding(
            "not_read_only",
            f"opaque {str(ctx.tree.this).upper()} statement the parser cannot type",
            span=(stmt.start, stmt.end),
        )
        raise Halt


#: Clauses a parenthesized statement may carry outside its parentheses.
_OUTER_CLAUSES = ("order", "limit", "offset", "locks")


def unparenthesize(tree: exp.Expr) -> exp.Expr:
    """``(SELECT ...)`` and ``(SELECT ...) LIMIT 5`` are the SELECT itself (clauses outside the
    parentheses move in when the inner query has none of them); anything else stays wrapped
    and the guard rejects it.

    >>> from policystrata.lower.sql.adapter import parse_one
    >>> unparenthesize(parse_one("((select a from t)) order by a limit 5")).sql("postgres")
    'SELECT a FROM t ORDER BY a LIMIT 5'
    """
    while isinstance(tree, exp.Subquery) and tree.args.get("alias") is None:
        inner = tree.this
        outer = {k: v for k, v in tree.args.items() if k != "this" and v}
        if not isinstance(inner, exp.Query) or any(
            k not in _OUTER_CLAUSES or inner.args.get(k) for k in outer
        ):
            return tree
        for k, v in outer.items():
            inner.set(k, v)
        inner.parent = None
        tree = inner
    return tree


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
