"""Parse semantic IR text (``grammars/semantic_ir.lark``) into a :class:`SemanticQuery`.

>>> q = parse_ir("escalated_tickets by severity, region during last_month grain month "
...              "where plan = 'pro' and region in ('emea','na') limit 100")
>>> q.metric, q.dimensions, q.limit
('escalated_tickets', ('severity', 'region'), 100)
>>> [f.to_text() for f in q.filters]
["plan = 'pro'", "region in ('emea', 'na')"]
>>> parse_ir("ticket_count by")
Traceback (most recent call last):
...
policystrata.errors.InputError: <ir>:1:16: unexpected end of input; expected a dimension name
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from policystrata.errors import InputError, did_you_mean
from policystrata.ir.query import Filter, SemanticQuery, Value
from policystrata.paths import grammars_dir

_EXPECT = {
    "NAME": "a name",
    "QUOTED_NAME": "a name",
    "STRING": "a 'quoted' string",
    "NUMBER": "a number",
    "INT": "an integer",
    "TRUE": "true",
    "FALSE": "false",
    "COMP_OP": "a comparison (=, !=, <, <=, >, >=)",
    "BY": "'by'",
    "DURING": "'during'",
    "GRAIN": "'grain'",
    "WHERE": "'where'",
    "LIMIT": "'limit'",
    "AND": "'and'",
    "IN": "'in'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "$END": "end of input",
}
_ORDER = list(_EXPECT.values())
_KEYWORDS = ("BY", "DURING", "GRAIN", "WHERE", "LIMIT", "AND", "IN")


@lru_cache(maxsize=1)
def ir_parser() -> Lark:
    """The Lark LALR parser for the IR grammar (built once)."""
    text = (grammars_dir() / "semantic_ir.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", lexer="contextual", propagate_positions=True)


_TOKENS = re.compile(r"""[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+"|'(?:[^']|'')*'|\S""")
_NAME_ROLE = {
    "by": "a dimension name",
    "where": "a dimension name",
    "and": "a dimension name",
    "during": "a time range name",
    "grain": "a grain name (e.g. month)",
}


def _name_role(text: str, pos: int) -> str:
    """What a name at ``pos`` would be: the metric, a dimension, a time range or a grain.

    >>> _name_role("ticket_count by region, ", 24), _name_role("", 0)
    ('a dimension name', 'a metric name')
    """
    words = [w.lower() for w in _TOKENS.findall(text[:pos])]
    if not words:
        return "a metric name"
    if words[-1] == ",":
        words = [w for w in words if w in _NAME_ROLE] or [""]
    return _NAME_ROLE.get(words[-1], "a name")


def _expected(names: Any, role: str = "a name") -> str:
    words = {
        role if n in ("NAME", "QUOTED_NAME") else _EXPECT.get(n, n.lower()) for n in names or ()
    }
    order = [role if w == "a name" else w for w in _ORDER]
    ordered = sorted(words, key=lambda w: (order.index(w) if w in order else len(order), w))
    if not ordered:
        return ""
    if len(ordered) == 1:
        return ordered[0]
    return "one of " + ", ".join(ordered)


def _accepts_at(text: str, exc: UnexpectedCharacters) -> set[str]:
    """Terminals the parser accepts where lexing failed (more precise than the lexer's set)."""
    try:
        ip = ir_parser().parse_interactive(text[: exc.pos_in_stream or 0])
        ip.exhaust_lexer()
        return set(ip.accepts())
    except UnexpectedInput:
        return set(exc.allowed or ())


class _Clause:
    def __init__(self, kind: str, value: Any, token: Token) -> None:
        self.kind, self.value, self.token = kind, value, token


@v_args(inline=True)
class _ToQuery(Transformer[Token, Any]):
    def name(self, tok: Token) -> str:
        if tok.type == "QUOTED_NAME":
            return str(tok)[1:-1].replace('""', '"')
        return str(tok)

    def string(self, tok: Token) -> Value:
        return str(tok)[1:-1].replace("''", "'")

    def number(self, tok: Token) -> Value:
        text = str(tok)
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)

    def true(self, _tok: Token) -> Value:
        return True

    def false(self, _tok: Token) -> Value:
        return False

    def compare(self, dim: str, op: Token, value: Value) -> Filter:
        o = "!=" if str(op) == "<>" else str(op)
        return Filter(dimension=dim, op=o, values=(value,))  # type: ignore[arg-type]

    def in_list(self, dim: str, _in: Token, *values: Value) -> Filter:
        return Filter(dimension=dim, op="in", values=tuple(values))

    def by_clause(self, kw: Token, *names: str) -> _Clause:
        return _Clause("dimensions", tuple(names), kw)

    def during_clause(self, kw: Token, name: str) -> _Clause:
        return _Clause("time_range", name, kw)

    def grain_clause(self, kw: Token, name: str) -> _Clause:
        return _Clause("grain", name, kw)

    def where_clause(self, kw: Token, *items: Any) -> _Clause:
        return _Clause("filters", tuple(i for i in items if isinstance(i, Filter)), kw)

    def limit_clause(self, kw: Token, n: Token) -> _Clause:
        return _Clause("limit", int(n), kw)

    def start(self, metric: str, *clauses: _Clause) -> tuple[str, list[_Clause]]:
        return metric, list(clauses)


def parse_ir(
    text: str, *, source: str = "<ir>", line: int | None = None, key: str | None = None
) -> SemanticQuery:
    """Parse IR text. Errors are :class:`InputError` with line and column (``source``/``line``
    place IR text embedded in another file: the IR's line 1 is ``line`` there)."""
    src = source

    def err(message: str, ln: int | None, col: int | None) -> InputError:
        if line is not None and ln is not None:
            ln = line + ln - 1
        return InputError(message, file=src, line=ln, column=col, key=key)

    try:
        tree = ir_parser().parse(text)
        metric, clauses = _ToQuery().transform(tree)
    except UnexpectedEOF as exc:
        lines = text.splitlines() or [""]
        role = _name_role(text, len(text))
        raise err(
            f"unexpected end of input; expected {_expected(exc.expected, role)}",
            len(lines),
            len(lines[-1]) + 1,
        ) from None
    except UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            lines = text.splitlines() or [""]
            what, ln, col, pos = "end of input", len(lines), len(lines[-1]) + 1, len(text)
        else:
            what, ln, col, pos = f"'{tok}'", exc.line, exc.column, tok.start_pos or 0
        try:
            accepts = set(exc.interactive_parser.accepts())
        except Exception:  # pragma: no cover - fall back to the LALR table's set
            accepts = set(exc.expected)
        hint = ""
        if tok.type in ("NAME", "QUOTED_NAME") and "STRING" in accepts:
            hint = f" (a text value is quoted: '{tok}')"
        elif tok.type == "NAME":
            keywords = [_EXPECT[a].strip("'") for a in accepts if a in _KEYWORDS]
            hint = did_you_mean(str(tok).lower(), keywords)
        expected = _expected(accepts, _name_role(text, pos))
        raise err(f"unexpected {what}; expected {expected}{hint}", ln, col) from None
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        expected = _expected(_accepts_at(text, exc), _name_role(text, pos))
        raise err(
            f"unexpected character {ch!r}; expected {expected}", exc.line, exc.column
        ) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        raise err(f"cannot parse IR: {exc}", getattr(exc, "line", None), None) from None
    except VisitError as exc:
        raise err(f"invalid IR: {exc.orig_exc}", None, None) from None
    fields: dict[str, Any] = {"metric": metric}
    for clause in clauses:
        if clause.kind in fields:
            raise err(
                f"duplicate '{str(clause.token).lower()}' clause",
                clause.token.line,
                clause.token.column,
            )
        fields[clause.kind] = clause.value
    return SemanticQuery(**fields)


def ir_from_value(
    value: Any, *, file: str | None = None, line: int | None = None, strict: bool = False
) -> SemanticQuery:
    """A :class:`SemanticQuery` from IR text or the dict form (a trace's ``semantic_ir``).

    Unknown keys are ignored unless ``strict`` (traces are forward compatible); any problem is
    an :class:`InputError` at ``file:line``.

    >>> ir_from_value({"metric": "ticket_count", "limit": 10, "extra": 1}).to_text()
    'ticket_count limit 10'
    """
    if isinstance(value, str):
        return parse_ir(value, source=file or "<ir>", line=line)
    try:
        return SemanticQuery.from_obj(value, strict=strict)
    except InputError:
        raise
    except (ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"invalid semantic IR: {msg}", file=file, line=line) from None
