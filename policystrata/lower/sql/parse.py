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

A parse error names the line and column of the token the parser stopped at, in words a user
reads (the span of the finding is that token, so reports can put a caret under it):

>>> [(f.reason, f.span) for f in lower_sql("q", "select count(* from accounts").findings]
[("cannot parse the SQL at line 1, column 16: expected ')' near 'from'", (15, 19))]
>>> lower_sql("q", "select cont(((").findings[0].reason
"cannot parse the SQL at line 1, column 14: incomplete parenthesis after '(' (the SQL ends there)"
>>> lower_sql("q", "select 1 from t where a = 'x").findings[0].reason
"cannot parse the SQL at line 1, column 27: the string opened here is never closed (missing ')"
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx, Halt
from policystrata.sql.adapter import (
    SqlglotError,
    exp,
    normalize_identifiers,
    parse,
    split_statements,
)
from policystrata.sql.errors import describe_parse_error, describe_token_error, position


def parse_sql(ctx: Ctx) -> None:
    """Tokenize and parse ``ctx.text`` into ``ctx.tree`` (one statement) and emit
    ``sql_present``."""
    ctx.emit("sql_present")
    try:
        statements = split_statements(ctx.text, ctx.dialect)
    except SqlglotError as e:
        reason, span = _token_error(e, ctx.text)
        ctx.finding("unparseable_sql", reason, span=span)
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
        reason, span = _parse_error(e, ctx.text, (stmt.start, stmt.end))
        ctx.finding("unparseable_sql", reason, span=span)
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

    >>> from policystrata.sql.adapter import parse_one
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


def _parse_error(e: Exception, text: str, whole: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The reason and span of a parse error: the line, column and token the parser stopped at,
    what it expected there; sqlglot's own wording only where it says more than ours."""
    what, span = describe_parse_error(e, text)
    if span is None:
        return f"cannot parse the SQL: {what}", whole
    line, column = position(text, span[0])
    return f"cannot parse the SQL at line {line}, column {column}: {what}", span


def _token_error(e: Exception, text: str) -> tuple[str, tuple[int, int]]:
    """The reason and span of a tokenizer error (see :func:`describe_token_error`)."""
    what, span = describe_token_error(e, text)
    if span == (0, len(text)) and not what.startswith("the "):
        return f"cannot tokenize the SQL: {what}", span
    line, column = position(text, span[0])
    return f"cannot parse the SQL at line {line}, column {column}: {what}", span
