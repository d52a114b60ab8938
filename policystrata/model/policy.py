"""Pydantic models of policy.yaml (FORMATS.md), including the optional (new) sections.

Defaults are the published ones (COMPAT.md §2), so a published policy means what it meant: a
metric costs 10 and a dimension 1 unless they say otherwise, and a role is ``aggregate_only``
unless it says ``false``. ``columns`` may be a list (possibly empty) or one bare name.

>>> p = Policy.model_validate({"version": "v7", "principals": {}, "roles": {}})
>>> p.as_of.isoformat(), p.metrics, p.tenancy
('2026-06-01', {}, {})
>>> m = Metric.model_validate({"expression": "count(id)", "table": "t", "columns": "id"})
>>> m.columns, m.cost, Dimension.model_validate({"column": "t.c"}).cost, Role().aggregate_only
(['id'], 10, 1, True)
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_AS_OF = dt.date(2026, 6, 1)


class Strict(BaseModel):
    """Base for authored files: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _str_list(value: Any) -> Any:
    """Let YAML numbers inside a list of names through as strings (tenant ``42``)."""
    if isinstance(value, list):
        return [
            str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value
        ]
    return value


class Principal(Strict):
    id: str
    role: str
    tenant_ids: list[str] = Field(default_factory=list)

    @field_validator("tenant_ids", mode="before")
    @classmethod
    def _tenants_as_str(cls, v: Any) -> Any:
        return _str_list(v)


class Role(Strict):
    allowed_metrics: list[str] = Field(default_factory=list)
    allowed_dimensions: list[str] = Field(default_factory=list)
    allowed_time_ranges: list[str] = Field(default_factory=list)
    max_rows: int | None = None
    max_cost: int | None = None
    aggregate_only: bool = True  # the published default


class Metric(Strict):
    expression: str
    table: str
    columns: list[str] | None = None
    allowed_roles: list[str] | None = None
    aliases: list[str] = Field(default_factory=list)
    grain: str | None = None  # published default "tenant" is never read: no grain fact
    cost: int = 10  # the published default
    time_column: str | None = None  # (new) table.column or column of `table`
    # (new) predicates the compiler adds to the metric's rows by design (SQL conditions, e.g.
    # "support_tickets.status <> 'spam'"): expected in the SQL, never semantic drift
    filters: list[str] = Field(default_factory=list)

    @field_validator("columns", mode="before")
    @classmethod
    def _bare_column(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Dimension(Strict):
    column: str  # table.column, an SQL expression over columns, or query_token.<name>
    allowed_roles: list[str] | None = None
    sensitive: bool = False
    cost: int = 1  # the published default


class TimeRange(Strict):
    """(new) exact half-open bounds [start, end) of a time range label."""

    start: dt.date
    end: dt.date
    calendar: Literal["calendar", "fiscal"] = "calendar"
    column_kind: Literal["date", "timestamp", "timestamptz"] = "date"
    timezone: str | None = None  # the zone the bounds are local to (IANA name, e.g. UTC)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: dt.date, info: Any) -> dt.date:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
        return end


class Join(Strict):
    """(new) a join path override: ``from`` (the many side) ``table.column`` -> ``to``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    cardinality: Literal["many_to_one", "one_to_many", "one_to_one"] = "many_to_one"


class TableSpec(Strict):
    """(new) per-table settings: ``filters`` are default predicates on every read of the table
    (a soft delete: ``deleted_at is null``), expected in the SQL, never semantic drift."""

    filters: list[str] = Field(default_factory=list)


class Release(Strict):
    """(new) release thresholds."""

    min_cohort_size: int | None = None
    sampling_disclosure: bool = False


class Policy(Strict):
    version: str | None = None
    as_of: dt.date = DEFAULT_AS_OF  # (new)
    principals: dict[str, Principal] = Field(default_factory=dict)
    roles: dict[str, Role] = Field(default_factory=dict)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    dimensions: dict[str, Dimension] = Field(default_factory=dict)
    tenancy: dict[str, str | None] = Field(default_factory=dict)  # (new) table -> tenant column
    time_ranges: dict[str, TimeRange] = Field(default_factory=dict)  # (new)
    joins: list[Join] = Field(default_factory=list)  # (new)
    release: Release | None = None  # (new)
    tables: dict[str, TableSpec] = Field(default_factory=dict)  # (new) table -> defaults

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    def resolve_metric(self, name: str) -> str | None:
        """Canonical metric name for a metric name or alias, or None.

        >>> Policy.model_validate({"metrics": {"m": {"expression": "count(*)", "table": "t",
        ...     "aliases": ["a"]}}}).resolve_metric("a")
        'm'
        """
        if name in self.metrics:
            return name
        for metric_name, metric in self.metrics.items():
            if name in metric.aliases:
                return metric_name
        return None

    def query_cost(self, metric: str, dimensions: list[str], limit: int | None) -> int:
        """The policy's cost of a request: metric cost + dimension costs + max(1, limit // 100).

        Names the policy does not know cost 0 (another check reports them).

        >>> Policy.model_validate({"metrics": {"m": {"expression": "count(*)", "table": "t",
        ...     "cost": 20}}, "dimensions": {"d": {"column": "t.d", "cost": 5}}}).query_cost(
        ...     "m", ["d", "nope"], 1000)
        35
        """
        resolved = self.resolve_metric(metric)
        cost = self.metrics[resolved].cost if resolved is not None else 0
        cost += sum(self.dimensions[d].cost for d in dimensions if d in self.dimensions)
        return cost + max(1, (limit or 0) // 100)
