"""The state the SQL lowering passes share: the text, the tree, the scopes, the facts emitted so
far and the findings. Passes read and extend it; none returns anything.

>>> ctx = Ctx("c1", "select 1")
>>> _ = ctx.emit("sql_present")
>>> ctx.facts.to_lines()
'sql_present("c1")\\n'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policystrata.facts import Const, FactSet, Provenance
from policystrata.sql.adapter import Scope, Tok, exp, node_span

FINDING_KINDS = ("unparseable_sql", "unanalysable_sql", "not_read_only")


@dataclass(frozen=True)
class SqlFinding:
    """Why a statement was not lowered (or not accepted as read-only)."""

    kind: str  # unparseable_sql | unanalysable_sql | not_read_only
    reason: str
    span: tuple[int, int] | None = None
    snippet: str | None = None

    def __str__(self) -> str:
        where = f" at [{self.span[0]}:{self.span[1]}]" if self.span else ""
        return f"{self.kind}: {self.reason}{where}"


@dataclass
class SqlLowering:
    """The result of :func:`policystrata.lower.sql.lower_sql`."""

    case_id: str
    facts: FactSet
    findings: list[SqlFinding]
    read_only: bool


@dataclass
class ScopeInfo:
    """One query scope: id (``s0`` is the root, then in text order), kind (root, cte, derived,
    subquery, union_branch, udtf), parent id, the sqlglot scope, and the CTE / alias name."""

    id: str
    kind: str
    parent: str | None
    scope: Scope
    name: str = ""


class Halt(Exception):
    """Raised by a pass to stop the pipeline (the finding is already recorded)."""


@dataclass
class Ctx:
    case_id: str
    text: str
    dialect: str = "postgres"
    source: Provenance | None = None
    schema_columns: dict[str, dict[str, str]] | None = None  # table -> column -> type
    facts: FactSet = field(default_factory=FactSet)
    findings: list[SqlFinding] = field(default_factory=list)
    tokens: list[Tok] = field(default_factory=list)
    tree: exp.Expr | None = None
    read_only: bool = False
    scopes: list[ScopeInfo] = field(default_factory=list)
    scope_of: dict[int, ScopeInfo] = field(default_factory=dict)  # id(Scope) -> info
    params: dict[int, str] = field(default_factory=dict)  # id(node) -> parameter name
    correlated: set[str] = field(default_factory=set)  # scope ids that reference outer scopes
    # id(node) -> (node, span): a node's span is asked for once per fact it backs (the node is
    # kept so its id cannot be reused by another node while the statement is lowered)
    _spans: dict[int, tuple[exp.Expr, tuple[int, int] | None]] = field(default_factory=dict)

    def column_type(self, table: str, column: str) -> str | None:
        """The column's type per the schema; None when it is not known (no schema, or a column
        the domain knows only from its policy: type ``unknown``)."""
        typ = (self.schema_columns or {}).get(table, {}).get(column)
        return None if typ in (None, "unknown") else typ

    # -- provenance --------------------------------------------------------------------------
    def span(self, node: exp.Expr | None) -> tuple[int, int] | None:
        if node is None:
            return None
        hit = self._spans.get(id(node))
        if hit is None or hit[0] is not node:
            hit = (node, node_span(node, self.tokens))
            self._spans[id(node)] = hit
        return hit[1]

    def prov(self, node: exp.Expr | None = None, note: str | None = None) -> Provenance:
        span = self.span(node)
        snippet = self.text[span[0] : span[1]] if span else None
        if snippet is not None and len(snippet) > 160:
            snippet = snippet[:157] + "..."
        if self.source is not None:
            return Provenance(
                self.source.source,
                line=self.source.line,
                column=self.source.column,
                span=span,
                snippet=snippet,
                note=note or self.source.note,
            )
        return Provenance("sql", span=span, snippet=snippet, note=note)

    # -- output ------------------------------------------------------------------------------
    def emit(self, pred: str, *args: Const, node: exp.Expr | None = None) -> None:
        self.facts.add(pred, self.case_id, *args, prov=self.prov(node))

    def finding(
        self,
        kind: str,
        reason: str,
        node: exp.Expr | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        assert kind in FINDING_KINDS, kind
        if span is None:
            span = self.span(node)
        if span is None and self.tokens:
            span = (self.tokens[0].start, self.tokens[-1].end)
        snippet = self.text[span[0] : span[1]] if span else None
        self.findings.append(SqlFinding(kind, reason, span, snippet))
        self.facts.add(
            "sql_finding",
            self.case_id,
            kind,
            reason,
            prov=Provenance(
                self.source.source if self.source else "sql",
                line=self.source.line if self.source else None,
                span=span,
                snippet=snippet,
            ),
        )

    # -- scopes ------------------------------------------------------------------------------
    def info(self, scope: Scope) -> ScopeInfo:
        """The numbered scope of a sqlglot scope. The self-reference of a recursive CTE is a
        separate sqlglot scope object over the same query: it maps to the CTE's scope."""
        known = self.scope_of.get(id(scope))
        if known is not None:
            return known
        for s in self.scopes:
            if s.scope.expression is scope.expression:
                self.scope_of[id(scope)] = s
                return s
        raise KeyError(f"unknown scope {scope.expression.sql()[:40]!r}")
