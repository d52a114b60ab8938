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

import re

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


# ---- parser errors in words a user reads -------------------------------------------------------

#: sqlglot node classes named in "Required keyword ... missing for <class ...>" -> what they are
_CONSTRUCTS = {
    "Paren": "parenthesis",
    "Tuple": "parenthesized list",
    "Where": "WHERE clause",
    "Having": "HAVING clause",
    "Limit": "LIMIT clause",
    "Offset": "OFFSET clause",
    "Group": "GROUP BY clause",
    "Order": "ORDER BY clause",
    "Join": "JOIN",
    "Union": "UNION",
    "Intersect": "INTERSECT",
    "Except": "EXCEPT",
    "And": "AND condition",
    "Or": "OR condition",
    "Not": "NOT condition",
    "In": "IN list",
    "Between": "BETWEEN",
    "Like": "LIKE",
    "ILike": "ILIKE",
    "Cast": "CAST",
    "Case": "CASE",
    "Alias": "alias",
}
_COMPARISONS = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is")
_ARITHMETIC = ("Add", "Sub", "Mul", "Div", "Mod", "IntDiv", "Pow", "DPipe")
_REQUIRED = re.compile(r"Required keyword: '\w+' missing for <class '(?:[\w]+\.)*(\w+)'>")
_TOKEN_REPR = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: \d+[^>]*>")
_CLASS_REPR = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")
_MISSING = re.compile(r"Missing (\S+) from \d+:(\d+)")
_OPENERS = {"'": "string", '"': "quoted name", "$$": "dollar-quoted string"}


def _construct(name: str) -> str:
    if name in _COMPARISONS:
        return "comparison"
    if name in _ARITHMETIC:
        return "arithmetic expression"
    return _CONSTRUCTS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _offset(text: str, line: int, col: int) -> int:
    """The character offset of sqlglot's 1-based (line, column)."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return starts[min(max(line, 1), len(starts)) - 1] + col - 1


def _parse_error(e: Exception, text: str, whole: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The reason and span of a parse error: the line, column and token the parser stopped at,
    what it expected there; sqlglot's own wording only where it says more than ours."""
    what, span = describe_parse_error(e, text)
    if span is None:
        return f"cannot parse the SQL: {what}", whole
    line, column = _position(text, span[0])
    return f"cannot parse the SQL at line {line}, column {column}: {what}", span


def describe_parse_error(e: Exception, text: str) -> tuple[str, tuple[int, int] | None]:
    """What a sqlglot parse error of ``text`` says, in words a user reads, and the span of the
    token the parser stopped at (``None`` when the error does not say).

    >>> from policystrata.lower.sql.adapter import ParseError, parse
    >>> try:
    ...     parse("select count(* from t")
    ... except ParseError as e:
    ...     print(describe_parse_error(e, "select count(* from t"))
    ("expected ')' near 'from'", (15, 19))
    """
    errors = getattr(e, "errors", None) or []
    info = errors[0] if errors and isinstance(errors[0], dict) else {}
    token = str(info.get("highlight") or "")
    line, col = info.get("line"), info.get("col")
    description = str(info.get("description") or _first_line(e))
    if not token or not isinstance(line, int) or not isinstance(col, int):
        return _plain(description), None
    end = _offset(text, line, col) + 1
    start = end - len(token)
    if start < 0 or text[start:end] != token:
        return _plain(description), None
    at_end = not text[end:].strip(" \t\r\n;")
    near = f"after '{token}' (the SQL ends there)" if at_end else f"near '{token}'"
    required = _REQUIRED.match(description)
    if required:
        what = f"incomplete {_construct(required.group(1))} {near}"
    elif description.startswith("Expecting "):
        what = f"expected '{description.removeprefix('Expecting ')}' {near}"
    elif description == "Invalid expression / Unexpected token":
        what = f"unexpected '{token}'"
    elif f"'{token}'" in _plain(description):  # sqlglot already names the token
        what = _plain(description) + (" (the SQL ends there)" if at_end else "")
    else:
        what = f"{_plain(description)} {near}"
    return what, (start, end)


def _token_error(e: Exception, text: str) -> tuple[str, tuple[int, int]]:
    """The reason and span of a tokenizer error (see :func:`describe_token_error`)."""
    what, span = describe_token_error(e, text)
    if span == (0, len(text)) and not what.startswith("the "):
        return f"cannot tokenize the SQL: {what}", span
    line, column = _position(text, span[0])
    return f"cannot parse the SQL at line {line}, column {column}: {what}", span


def describe_token_error(e: Exception, text: str) -> tuple[str, tuple[int, int]]:
    """A tokenizer error in words: an unterminated string, quoted name, dollar quote or comment,
    spanning from the character that opened it (else sqlglot's message over the whole text).

    >>> from policystrata.lower.sql.adapter import TokenError, tokenize
    >>> try:
    ...     tokenize("select 'abc")
    ... except TokenError as e:
    ...     print(describe_token_error(e, "select 'abc"))
    ("the string opened here is never closed (missing ')", (7, 11))
    """
    # sqlglot raises it "from" the tokenizer's own error; compiled with mypyc (sqlglotc) only
    # the implicit __context__ survives, so both are read
    cause = _MISSING.search(str(e.__cause__ or e.__context__ or ""))
    if cause and cause.group(1) in _OPENERS and int(cause.group(2)) < len(text):
        delimiter, start = cause.group(1), int(cause.group(2))
        what = f"the {_OPENERS[delimiter]} opened here is never closed (missing {delimiter})"
        return what, (start, len(text))
    if "/*" in text and "*/" not in text[text.index("/*") + 2 :]:
        what = "the comment opened here is never closed (missing */)"
        return what, (text.index("/*"), len(text))
    return _plain(_first_line(e)), (0, len(text))


def _plain(description: str) -> str:
    """sqlglot's wording without Python reprs (``<Token ...>``, ``<class ...>``)."""
    out = _TOKEN_REPR.sub(lambda m: f"'{m.group(1)}'", description)
    out = _CLASS_REPR.sub(lambda m: m.group(1), out)
    out = re.sub(r"\. Line \d+, Col: \d+\.?$", "", out)
    return out[:1].lower() + out[1:]
