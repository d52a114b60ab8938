"""A case: the artifacts one request produced, as the detector receives them.

A case never carries a fault label or an expected verdict: benchmark labels are kept by the
caller and compared only after detection.

>>> c = Case(id="t1", principal="acme_analyst", sql="select 1")
>>> c.release_decision is None
True
>>> Case(id="dbt", semantic_layer=(SourceText("models.yml", "metrics: []"),)).semantic_layer[0].name
'models.yml'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policystrata.facts import Const, Provenance
from policystrata.witness import CaseInfo, SourceRef

if TYPE_CHECKING:
    from policystrata.ir import SemanticQuery


@dataclass(frozen=True)
class SourceText:
    """An artifact that is a file's text, with the name reports give it (a path relative to the
    scan config, or the file name given on the command line)."""

    name: str
    text: str


@dataclass(frozen=True)
class DbCheck:
    """A database check a scan config declares (``rls_checks``, ``state_assertions``): a query
    run as the app role under one tenant, and what its rows must be. The rows it returns are
    the artifact; what they must be are the check's expectations (facts), judged by
    ``rules/db_checks.dl``. ``None`` in a value list is SQL NULL; a ``forbidden_values`` list
    under the column ``*`` applies to every column."""

    kind: str  # "rls_check" | "state_assertion"
    name: str
    sql: str
    tenant: str | None = None
    expected_rows: int | None = None
    expected_tenants: tuple[str, ...] = ()
    tenant_column: str = "tenant_id"
    expect_empty: bool = False
    require_columns: tuple[str, ...] = ()
    forbidden_columns: tuple[str, ...] = ()
    allowed_values: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    forbidden_values: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    required: bool = False


@dataclass
class Case:
    """Artifacts of one request. Every field except ``id`` is optional: a layer that produced
    nothing contributes no facts."""

    id: str
    principal: str | None = None
    ir: SemanticQuery | None = None
    sql: str | None = None
    tenant_ids: tuple[str, ...] | None = None
    params: dict[str, Const] = field(default_factory=dict)
    release_decision: str | None = None  # "release" | "withhold"
    origin: Provenance | None = None  # trace file:line, suite task, or the command line
    # Artifacts of the other layers, as the layers produced them (raw, never pre-lowered facts):
    request_text: str | None = None  # the request as the grammar layer saw it (IR text)
    manifest: dict[str, Any] | None = None  # capability JSON shown to the model
    grammar: str | None = None  # Lark grammar text generated from the manifest
    validator: dict[str, Any] | None = None  # {"decision": allow|deny, "obligations": [...]}
    cost_estimate: int | None = None  # the compiler's cost estimate
    ddl: str | None = None  # the DDL in force, when it differs from the domain's schema.sql
    reference_sql: str | None = None  # the canonical compiler's SQL: evidence only, never lowered
    reference_params: dict[str, Const] = field(default_factory=dict)  # its bound $n parameters
    # the dbt Semantic Layer (MetricFlow YAML files) the stack serves metrics through
    semantic_layer: tuple[SourceText, ...] | None = None
    # a database check of the scan config (its rows are read when a database is attached)
    db_check: DbCheck | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # pass-through (regression_case, source)

    def info(self) -> CaseInfo:
        source = None
        if self.origin is not None:
            source = SourceRef(
                file=self.origin.source, line=self.origin.line, note=self.origin.note
            )
        return CaseInfo(
            id=self.id,
            principal=self.principal,
            ir=self.ir.to_text() if self.ir is not None else None,
            sql=self.sql,
            tenant_ids=list(self.tenant_ids) if self.tenant_ids is not None else None,
            release_decision=self.release_decision,  # type: ignore[arg-type]
            source=source,
        )
