"""sqlglot's parse and tokenizer errors, in words a user reads, with the span they point at.

Used wherever SQL text is parsed: trace SQL (the ``parse`` pass of the SQL lowering), schema.sql
(:mod:`policystrata.sql.ddl`), policy expressions.
"""

from __future__ import annotations

import re


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


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _offset(text: str, line: int, col: int) -> int:
    """The character offset of sqlglot's 1-based (line, column)."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return starts[min(max(line, 1), len(starts)) - 1] + col - 1


def describe_parse_error(e: Exception, text: str) -> tuple[str, tuple[int, int] | None]:
    """What a sqlglot parse error of ``text`` says, in words a user reads, and the span of the
    token the parser stopped at (``None`` when the error does not say).

    >>> from policystrata.sql.adapter import ParseError, parse
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


def describe_token_error(e: Exception, text: str) -> tuple[str, tuple[int, int]]:
    """A tokenizer error in words: an unterminated string, quoted name, dollar quote or comment,
    spanning from the character that opened it (else sqlglot's message over the whole text).

    >>> from policystrata.sql.adapter import TokenError, tokenize
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
