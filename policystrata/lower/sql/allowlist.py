"""The execution allow-list: which SQL may ever be sent to a database server.

Static analysis judges any statement; *execution* is a different question. Trace SQL is hostile
input, and a deny-list of dangerous names can always be walked around (an escaped identifier
``U&"pg\\005fsleep"``, a schema-qualified ``pg_catalog.set_config``, a function that runs SQL
given as text such as ``ts_stat``, a function nobody thought of). So the gate in front of a
server is an allow-list: a statement is executed only when **every** construct in it is on the
list below; anything else is analysed statically as usual, never sent, and the record gets a
``not_executed`` finding naming the first construct off the list and its span.

What is on the list, and why (PostgreSQL, :data:`POSTGRES`):

- **relations**: the domain's own tables and views (from the schema facts), unqualified or
  qualified by ``public``, plus the CTE names of the statement itself. No catalog table, no
  table function (``generate_series``, ``dblink``, ...), no other schema.
- **functions**, by the name as written (unquoted names fold to lower case, quoted names keep
  theirs; a schema-qualified call is refused): aggregates, window ranking, arithmetic, string,
  date/time and conditional functions (:data:`POSTGRES_FUNCTIONS`). Each is a pure built-in: it
  reads its arguments and nothing else, writes nothing, does not sleep, lock, read files, reach
  another server or run SQL given as text.
- ``current_setting`` with a literal name of a custom setting (``app.tenant_id``) and an
  optional literal ``missing_ok``: the tenant predicate of row level security needs it; a
  computed name could read any setting.
- **operators**: comparison, boolean logic, arithmetic, ``||``, ``LIKE``/``ILIKE``, ``IN``,
  ``BETWEEN``, ``IS [NOT] [DISTINCT FROM]``; **syntax**: SELECT with its clauses, joins,
  subqueries, CTEs, set operations, ``CASE``, ``EXISTS``, window and ``FILTER`` clauses.
- **casts** to plain types (:data:`POSTGRES_CAST_TYPES`): numbers, text, boolean, date/time,
  interval. Never to ``regclass``/``regproc`` or a user-defined type (their input functions are
  the domain's or the catalog's, not data).
- **literals and parameters**; ``U&'...'`` strings and ``U&"..."`` identifiers are refused
  (sqlglot and PostgreSQL disagree on them, so what was checked would not be what runs).

The list is per dialect (:data:`ALLOW_LISTS`); a dialect without one executes nothing.

>>> refusals = execution_refusals('select U&"pg\\\\005fsleep"(30) limit 1', relations={"t"})
>>> refusals[0].construct
'U&"pg\\\\005fsleep"'
>>> [r.construct for r in execution_refusals(
...     "select pg_catalog.set_config('app.tenant_id', 'beta', true)", relations=set())]
['pg_catalog.set_config(...)']
>>> execution_refusals("select count(*) from accounts where tenant_id = "
...                    "current_setting('app.tenant_id', true)", relations={"accounts"})
[]
>>> [r.reason for r in execution_refusals("select * from pg_roles", relations={"accounts"})]
["relation pg_roles is not one of the domain's tables or the statement's CTEs"]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from policystrata.sql.adapter import (
    SqlglotError,
    Tok,
    exp,
    node_span,
    parse,
    split_statements,
)


@dataclass(frozen=True)
class Refusal:
    """A construct that keeps a statement from being executed: what it is (as written, short),
    why it is refused, and its ``[start, end)`` span in the SQL text."""

    construct: str
    reason: str
    span: tuple[int, int] | None = None

    def __str__(self) -> str:
        where = f" at [{self.span[0]}:{self.span[1]}]" if self.span else ""
        return f"{self.reason}{where}"


@dataclass(frozen=True)
class AllowList:
    """One dialect's list: function names (as written, normalised), node classes of syntax and
    operators, node classes of keyword-syntax functions the parser records no name for, cast
    target types, and the schemas a relation may be qualified with."""

    dialect: str
    functions: frozenset[str]
    syntax: tuple[type[exp.Expr], ...]
    keyword_functions: tuple[type[exp.Expr], ...]
    cast_types: frozenset[str]
    relation_schemas: frozenset[str]
    unit_parents: tuple[type[exp.Expr], ...]


def _classes(*names: str) -> tuple[type[exp.Expr], ...]:
    """sqlglot node classes by name (a name this sqlglot release lacks is skipped)."""
    out = []
    for name in names:
        cls = getattr(exp, name, None)
        if isinstance(cls, type) and issubclass(cls, exp.Expr):
            out.append(cls)
    return tuple(out)


#: Function names PostgreSQL may execute for trace SQL (see the module docstring).
POSTGRES_FUNCTIONS: frozenset[str] = frozenset(
    {
        # aggregates
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "variance",
        "var_pop",
        "var_samp",
        "bool_and",
        "bool_or",
        "every",
        "string_agg",
        "percentile_cont",
        "percentile_disc",
        # window ranking and navigation
        "row_number",
        "rank",
        "dense_rank",
        "percent_rank",
        "cume_dist",
        "ntile",
        "lag",
        "lead",
        "first_value",
        "last_value",
        "nth_value",
        # arithmetic
        "abs",
        "round",
        "trunc",
        "floor",
        "ceil",
        "ceiling",
        "sign",
        "mod",
        "power",
        "sqrt",
        "div",
        # conditional
        "coalesce",
        "nullif",
        "greatest",
        "least",
        # string
        "lower",
        "upper",
        "initcap",
        "length",
        "char_length",
        "character_length",
        "substring",
        "substr",
        "trim",
        "btrim",
        "ltrim",
        "rtrim",
        "concat",
        "concat_ws",
        "replace",
        "left",
        "right",
        "lpad",
        "rpad",
        "position",
        "strpos",
        "split_part",
        "starts_with",
        # date / time
        "date_trunc",
        "date_part",
        "extract",
        "date_bin",
        "now",
        "age",
        "make_date",
        "make_time",
        "make_timestamp",
        "make_interval",
        "to_char",
        "to_date",
        "to_timestamp",
        "to_number",
        # the tenant setting (only with literal arguments, see _current_setting)
        "current_setting",
    }
)

#: Cast target types (lower case, without parameters) PostgreSQL may execute.
POSTGRES_CAST_TYPES: frozenset[str] = frozenset(
    {
        "smallint",
        "int",
        "int2",
        "int4",
        "int8",
        "integer",
        "bigint",
        "numeric",
        "decimal",
        "real",
        "double",
        "double precision",
        "float",
        "float4",
        "float8",
        "text",
        "varchar",
        "char",
        "character",
        "character varying",
        "boolean",
        "bool",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "timestamp with time zone",
        "timestamp without time zone",
        "interval",
    }
)

POSTGRES = AllowList(
    dialect="postgres",
    functions=POSTGRES_FUNCTIONS,
    syntax=_classes(
        # statement structure
        "Select",
        "From",
        "Join",
        "Where",
        "Group",
        "Having",
        "Order",
        "Ordered",
        "Limit",
        "LimitOptions",
        "Offset",
        "Fetch",
        "With",
        "CTE",
        "Subquery",
        "TableAlias",
        "Alias",
        "Column",
        "Identifier",
        "Star",
        "Table",
        "Distinct",
        "Union",
        "Intersect",
        "Except",
        "Paren",
        "Tuple",
        "Window",
        "WindowSpec",
        "Filter",
        "WithinGroup",
        "Lateral",
        "Exists",
        # values
        "Literal",
        "Boolean",
        "Null",
        "Placeholder",
        "Parameter",
        "DataType",
        "DataTypeParam",
        "Var",
        "Interval",
        # operators
        "And",
        "Or",
        "Not",
        "EQ",
        "NEQ",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "Is",
        "In",
        "Between",
        "Like",
        "ILike",
        "Escape",
        "NullSafeEQ",
        "NullSafeNEQ",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Mod",
        "Pow",
        "Neg",
        "DPipe",
    ),
    keyword_functions=_classes(
        "Case",
        "If",
        "Cast",
        "Extract",
        "Substring",
        "Trim",
        "StrPosition",
        "Initcap",
        "Ceil",
        "Floor",
        "GroupConcat",
        "CurrentDate",
        "CurrentTimestamp",
        "CurrentTime",
        "Localtimestamp",
    ),
    cast_types=POSTGRES_CAST_TYPES,
    relation_schemas=frozenset({"public"}),
    unit_parents=_classes("Extract", "Interval", "TimestampTrunc", "DateTrunc", "Trim"),
)

#: The allow-list of each dialect. A dialect without one executes nothing (ClickHouse: issue 13).
ALLOW_LISTS: dict[str, AllowList] = {"postgres": POSTGRES}


def allow_list(dialect: str) -> AllowList | None:
    """The dialect's allow-list, or None (nothing of that dialect is executed)."""
    return ALLOW_LISTS.get(dialect)


# ------------------------------------------------------------------------------ identifiers


def decode_unicode_escapes(body: str, escape: str = "\\") -> str | None:
    """The text of a ``U&"..."`` / ``U&'...'`` body: ``\\XXXX`` and ``\\+XXXXXX`` escapes (or
    another UESCAPE character) decoded, a doubled escape character kept once. ``None`` when the
    body is not valid (PostgreSQL would reject it too).

    >>> decode_unicode_escapes("pg\\\\005fsleep")
    'pg_sleep'
    >>> decode_unicode_escapes("set!005fconfig", "!")
    'set_config'
    >>> decode_unicode_escapes("a\\\\+00005Fb"), decode_unicode_escapes("bad\\\\zz") is None
    ('a_b', True)
    """
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != escape:
            out.append(ch)
            i += 1
            continue
        if body[i + 1 : i + 2] == escape:
            out.append(escape)
            i += 2
            continue
        if body[i + 1 : i + 2] == "+":
            digits, width = body[i + 2 : i + 8], 8
        else:
            digits, width = body[i + 1 : i + 5], 5
        if len(digits) != width - (2 if width == 8 else 1) or not all(
            c in "0123456789abcdefABCDEF" for c in digits
        ):
            return None
        try:
            out.append(chr(int(digits, 16)))
        except (ValueError, OverflowError):
            return None
        i += width
    return "".join(out)


@dataclass(frozen=True)
class UnicodeName:
    """A ``U&"..."`` identifier or ``U&'...'`` string found in the token stream."""

    written: str
    decoded: str | None
    span: tuple[int, int]
    identifier: bool


def unicode_escapes(tokens: Iterable[Tok], text: str) -> list[UnicodeName]:
    """Every ``U&"..."`` identifier and ``U&'...'`` string of a statement, from its tokens (the
    parser reads ``U&"x"`` as the column ``u`` AND the quoted name ``x``; PostgreSQL reads one
    escaped name). A ``UESCAPE`` clause after it is honoured when decoding.

    >>> from policystrata.sql.adapter import tokenize
    >>> sql = 'select U&"set\\\\005fconfig"(1)'
    >>> [(u.written, u.decoded) for u in unicode_escapes(tokenize(sql), sql)]
    [('U&"set\\\\005fconfig"', 'set_config')]
    """
    toks = list(tokens)
    out: list[UnicodeName] = []
    for i, tok in enumerate(toks):
        if tok.type == "UNICODE_STRING":
            start = tok.start
            decoded = decode_unicode_escapes(tok.text)
            out.append(UnicodeName(text[start : tok.end], decoded, (start, tok.end), False))
            continue
        if tok.text.lower() != "u" or i + 2 >= len(toks):
            continue
        amp, name = toks[i + 1], toks[i + 2]
        if amp.text != "&" or amp.start != tok.end or name.start != amp.end:
            continue
        if name.type not in ("IDENTIFIER", "STRING"):
            continue
        escape = "\\"
        if i + 4 < len(toks) and toks[i + 3].upper == "UESCAPE" and toks[i + 4].type == "STRING":
            escape = toks[i + 4].text[:1] or "\\"
        span = (tok.start, name.end)
        out.append(
            UnicodeName(
                text[span[0] : span[1]],
                decode_unicode_escapes(name.text, escape),
                span,
                name.type == "IDENTIFIER",
            )
        )
    return out


def written_name(node: exp.Expr, text: str) -> str | None:
    """The name of a function call as written in ``text`` and as PostgreSQL resolves it:
    unquoted names fold to lower case, quoted names keep their case (``""`` is one ``"``).
    ``None`` when the parser recorded no position for the name (keyword syntax such as
    ``EXTRACT(... FROM ...)``, or a call the parser rebuilt).

    >>> from policystrata.sql.adapter import parse_one
    >>> sql = 'select COUNT(*), "Upper"(a) from t'
    >>> [written_name(n, sql) for n in parse_one(sql).expressions]
    ['count', 'Upper']
    """
    meta: dict[str, Any] | None = getattr(node, "_meta", None)
    if not meta or "start" not in meta or "end" not in meta:
        return None
    raw = text[int(meta["start"]) : int(meta["end"]) + 1]
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1].replace('""', '"')
    return raw.lower()


# ------------------------------------------------------------------------------ the check


def execution_refusals(
    text: str, *, relations: Collection[str], dialect: str = "postgres"
) -> list[Refusal]:
    """Why ``text`` must not be executed (empty: every construct is on the dialect's list).

    The statement is tokenized and parsed here, independently of the SQL lowering; anything
    that does not parse into exactly one statement is refused. ``relations`` are the domain's
    table and view names (lower case unless created quoted).
    """
    allowed = allow_list(dialect)
    if allowed is None:
        return [Refusal(dialect, f"no execution allow-list for the {dialect} dialect")]
    try:
        statements = split_statements(text, dialect)
        trees = [t for t in parse(text, dialect) if t is not None]
    except (SqlglotError, RecursionError, Exception) as exc:  # parser builders raise anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Refusal("statement", f"the SQL does not parse: {first}")]
    if len(statements) != 1 or len(trees) != 1:
        return [Refusal("statement", f"{len(statements)} statements; exactly one may run")]
    tokens = list(statements[0].tokens)
    out: list[Refusal] = []
    for u in unicode_escapes(tokens, text):
        kind = "identifier" if u.identifier else "string"
        out.append(
            Refusal(
                u.written,
                f"Unicode-escaped {kind} {u.written}"
                + (f" (= {u.decoded!r})" if u.decoded else "")
                + ": the parser and the server read it differently",
                u.span,
            )
        )
    try:
        checker = _Checker(allowed, text, tokens, relations, trees[0])
        checker.visit(trees[0])
    except RecursionError:
        return [Refusal("statement", "the statement is nested too deeply to check")]
    except Exception as exc:  # a checker bug must refuse, never admit
        return [Refusal("statement", f"the statement could not be checked: {exc!r}")]
    return out + checker.refusals


class _Checker:
    def __init__(
        self,
        allowed: AllowList,
        text: str,
        tokens: list[Tok],
        relations: Collection[str],
        tree: exp.Expr,
    ) -> None:
        self.allowed = allowed
        self.text = text
        self.tokens = tokens
        self.relations = set(relations)
        aliases = (cte.args.get("alias") for cte in tree.find_all(exp.CTE))
        self.ctes = {_ident(a.this) for a in aliases if isinstance(a, exp.TableAlias)}
        self.refusals: list[Refusal] = []

    def refuse(self, node: exp.Expr, construct: str, reason: str) -> None:
        span = node_span(node, self.tokens)
        self.refusals.append(Refusal(construct, reason, span))

    def snippet(self, node: exp.Expr) -> str:
        span = node_span(node, self.tokens)
        text = self.text[span[0] : span[1]] if span else node.sql(dialect=self.allowed.dialect)
        text = " ".join(text.split())
        return text if len(text) <= 60 else text[:57] + "..."

    def visit(self, root: exp.Expr) -> None:
        for node in root.walk():
            self.check(node)

    def check(self, node: exp.Expr) -> None:
        a = self.allowed
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            name = node.sql(dialect=a.dialect).split("(", 1)[0]
            self.refuse(
                node,
                f"{name.lower()}(...)",
                f"schema-qualified function call {name.lower()}() is not on the execution "
                "allow-list",
            )
            return
        if isinstance(node, exp.Table):
            self.check_relation(node)
            return
        if isinstance(node, exp.Cast):
            self.check_cast(node)
            return
        if isinstance(node, exp.Var) and not isinstance(node.parent, a.unit_parents):
            self.refuse(node, node.name, f"bare keyword {node.name!r} is not on the allow-list")
            return
        if isinstance(node, exp.Parameter) and not isinstance(node.this, exp.Literal):
            self.refuse(node, self.snippet(node), f"`{self.snippet(node)}` is not a $n parameter")
            return
        if isinstance(node, exp.Lateral) and not isinstance(node.this, exp.Subquery):
            self.refuse(node, self.snippet(node), "LATERAL over something other than a subquery")
            return
        if isinstance(node, exp.Func):
            self.check_function(node)
            return
        if not isinstance(node, a.syntax):
            self.refuse(
                node,
                self.snippet(node),
                f"{_describe(node)} `{self.snippet(node)}` is not on the execution allow-list",
            )

    def _token_index(self, start: int) -> int | None:
        for i, tok in enumerate(self.tokens):
            if tok.start == start:
                return i
        return None

    def call_prefix(self, node: exp.Expr) -> str | None:
        """The name written before the ``(`` that opens ``node``'s first operand, when there is
        one (``date_part('year', d)``, ``ceil(a)``): what PostgreSQL calls, whatever node the
        parser built. None for keyword syntax (``extract(year FROM d)``, ``a::int``)."""
        span = node_span(node)
        if span is None:
            return None
        i = self._token_index(span[0])
        if i is None or i < 2 or self.tokens[i - 1].type != "L_PAREN":
            return None
        name = self.tokens[i - 2]
        if name.type not in ("VAR", "IDENTIFIER") or name.end > self.tokens[i - 1].start:
            return None
        written = name.text if name.type == "IDENTIFIER" else name.text.lower()
        return None if written in _NOT_CALLS else written

    def check_function(self, node: exp.Func) -> None:
        a = self.allowed
        name = written_name(node, self.text)
        if name is None:
            name = self.call_prefix(node)
        if name is None:  # keyword syntax: the node class says what it is
            known = isinstance(node, a.keyword_functions + a.syntax)
            if known and (node_span(node) is not None or isinstance(node, _NO_ARGUMENTS)):
                return
            self.refuse(
                node,
                self.snippet(node),
                f"{_describe(node)} `{self.snippet(node)}` is not on the execution allow-list",
            )
            return
        if name not in a.functions:
            self.refuse(node, f"{name}()", f"function {name}() is not on the execution allow-list")
            return
        if name == "current_setting":
            reason = _current_setting(node)
            if reason:
                self.refuse(node, self.snippet(node), reason)

    def check_relation(self, table: exp.Table) -> None:
        this = table.this
        if not isinstance(this, exp.Identifier):
            what = self.snippet(table)
            self.refuse(table, what, f"table function `{what}` is not on the execution allow-list")
            return
        name = _ident(this)
        if table.args.get("catalog"):
            what = self.snippet(table)
            self.refuse(table, what, f"relation {what} names another database")
            return
        schema = table.args.get("db")
        if schema is not None:
            qualifier = _ident(schema)
            if qualifier not in self.allowed.relation_schemas:
                written = f"{qualifier}.{name}"
                self.refuse(
                    table,
                    written,
                    f"relation {written} is outside the domain's schema",
                )
                return
        elif name in self.ctes:
            return
        if name not in self.relations:
            self.refuse(
                table,
                name,
                f"relation {name} is not one of the domain's tables or the statement's CTEs",
            )

    def check_cast(self, node: exp.Cast) -> None:
        to = node.args.get("to")
        type_name = _type_name(to)
        if type_name is None or type_name not in self.allowed.cast_types:
            written = to.sql(dialect=self.allowed.dialect) if to is not None else "?"
            self.refuse(node, f"::{written.lower()}", f"cast to {written.lower()} is not allowed")
            return
        if not self.written_as_cast(node):
            what = self.snippet(node)
            self.refuse(node, what, f"`{what}` is a call the parser rebuilt as a cast")

    def written_as_cast(self, node: exp.Cast) -> bool:
        """A cast as PostgreSQL reads it: ``x::type``, ``CAST(x AS type)`` or a typed literal
        (``date '2026-05-01'``), not a function call the parser rebuilt as a cast."""
        operand = node.this
        span = node_span(operand, self.tokens) if operand is not None else None
        if span is None:
            return False
        i = self._token_index(span[0])
        after = [t for t in self.tokens if t.start >= span[1]]
        inner = operand
        while isinstance(inner, exp.Paren) and after and after[0].type == "R_PAREN":
            after, inner = after[1:], inner.this  # (x)::type: the operand's own parentheses
        if after and after[0].type == "DCOLON":
            return True
        opened = i is not None and i >= 2 and self.tokens[i - 1].type == "L_PAREN"
        if opened and i is not None and self.tokens[i - 2].upper == "CAST":
            return True
        if i is not None and i >= 1 and isinstance(operand, exp.Literal):
            return self.tokens[i - 1].upper in _TYPE_WORDS
        return False


#: Words that may stand before ``(`` without naming a function (``GROUP BY (a || b)``).
_NOT_CALLS = frozenset({"by", "group", "order", "within", "then", "else", "when", "as", "and"})
#: Typed literals: ``date '2026-05-01'``.
_TYPE_WORDS = frozenset({"DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL"})
#: Keyword functions without arguments (``current_date``): they have no span to check.
_NO_ARGUMENTS = _classes("CurrentDate", "CurrentTimestamp", "CurrentTime", "Localtimestamp")


def _ident(node: Any) -> str:
    if isinstance(node, exp.Identifier):
        return node.name if node.quoted else node.name.lower()
    return str(node.name if isinstance(node, exp.Expr) else node).lower()


def _type_name(to: exp.Expr | None) -> str | None:
    """A cast target as a plain lower-case type name, or None when it is not a plain type
    (an array, a user-defined or object-identifier type)."""
    if not isinstance(to, exp.DataType):
        return None
    if to.this == exp.DataType.Type.USERDEFINED or to.args.get("nested"):
        return None
    if any(not isinstance(e, exp.DataTypeParam) for e in to.expressions):
        return None
    base = exp.DataType(this=to.this).sql(dialect="postgres").lower()
    return base.split("(", 1)[0].strip()


def _current_setting(node: exp.Func) -> str | None:
    """Why a current_setting() call is refused: only a literal custom setting name (with a dot,
    like ``app.tenant_id``) and an optional literal boolean ``missing_ok``."""
    args = [a for a in node.iter_expressions()]
    if not 1 <= len(args) <= 2:
        return "current_setting() takes a setting name and an optional missing_ok"
    name = args[0]
    if not (isinstance(name, exp.Literal) and name.is_string and "." in name.this):
        return "current_setting() may only read a custom setting named by a literal (app.tenant_id)"
    if len(args) == 2 and not isinstance(args[1], exp.Boolean):
        return "current_setting()'s missing_ok must be a literal true or false"
    return None


_WORDS = {
    "BitwiseAnd": "operator &",
    "BitwiseOr": "operator |",
    "BitwiseXor": "operator #",
    "RegexpLike": "regular expression match",
    "RegexpILike": "regular expression match",
    "JSONExtract": "JSON operator",
    "JSONExtractScalar": "JSON operator",
    "Array": "array constructor",
    "Bracket": "subscript",
    "Any": "ANY",
    "All": "ALL",
    "Values": "VALUES list",
    "TableSample": "TABLESAMPLE",
    "Lock": "row lock",
    "UnicodeString": "Unicode-escaped string",
    "Anonymous": "function",
}


def _describe(node: exp.Expr) -> str:
    name = type(node).__name__
    return _WORDS.get(name, f"{node.key.replace('_', ' ')} expression")
