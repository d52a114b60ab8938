"""The semantic IR value: :class:`SemanticQuery` (what a data agent asked for).

Two written forms produce the same value: IR text (:func:`policystrata.ir.parse_ir`) and the
JSON/dict form used by suites and traces (:meth:`SemanticQuery.from_obj`).

>>> q = SemanticQuery.from_obj({"metric": "ticket_count", "dimensions": ["region"],
...     "filters": {"plan": "pro", "region": ["emea", "na"]}, "time_range": "last_month",
...     "limit": 100})
>>> print(q.to_text())
ticket_count by region during last_month where plan = 'pro' and region in ('emea', 'na') limit 100
>>> q.to_dict()["filters"][1]
{'dimension': 'region', 'op': 'in', 'value': ['emea', 'na']}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from policystrata.errors import did_you_mean

Value = bool | int | float | str
Op = Literal["=", "!=", "<", "<=", ">", ">=", "in"]
OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=", "in")
KEYWORDS = frozenset({"by", "during", "grain", "where", "limit", "and", "in", "true", "false"})
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
QUERY_KEYS = ("metric", "dimensions", "filters", "time_range", "grain", "limit")


class Filter(BaseModel):
    """``dimension op value``; ``in`` carries several values, the other operators one."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    dimension: str
    op: Op
    values: tuple[Value, ...]

    @field_validator("values")
    @classmethod
    def _arity(cls, values: tuple[Value, ...], info: Any) -> tuple[Value, ...]:
        op = info.data.get("op")
        if not values:
            raise ValueError("a filter needs a value")
        if op != "in" and len(values) != 1:
            raise ValueError(f"operator {op} takes one value, got {len(values)}")
        return values

    def to_text(self) -> str:
        if self.op == "in":
            values = ", ".join(render_value(v) for v in self.values)
            return f"{render_name(self.dimension)} in ({values})"
        return f"{render_name(self.dimension)} {self.op} {render_value(self.values[0])}"

    def to_dict(self) -> dict[str, Any]:
        value: Any = list(self.values) if self.op == "in" else self.values[0]
        return {"dimension": self.dimension, "op": self.op, "value": value}


class SemanticQuery(BaseModel):
    """A semantic query: metric, dimensions, filters, time range, grain and row limit."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    metric: str
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    time_range: str | None = None
    grain: str | None = None
    limit: int | None = None

    def to_text(self) -> str:
        """Canonical IR text (clauses in the order by, during, grain, where, limit)."""
        parts = [render_name(self.metric)]
        if self.dimensions:
            parts.append("by " + ", ".join(render_name(d) for d in self.dimensions))
        if self.time_range is not None:
            parts.append("during " + render_name(self.time_range))
        if self.grain is not None:
            parts.append("grain " + render_name(self.grain))
        if self.filters:
            parts.append("where " + " and ".join(f.to_text() for f in self.filters))
        if self.limit is not None:
            parts.append(f"limit {self.limit}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (all six keys; filters in list form)."""
        return {
            "metric": self.metric,
            "dimensions": list(self.dimensions),
            "filters": [f.to_dict() for f in self.filters],
            "time_range": self.time_range,
            "grain": self.grain,
            "limit": self.limit,
        }

    @classmethod
    def from_obj(cls, obj: Any, *, strict: bool = True) -> SemanticQuery:
        """Build from IR text or the dict form. Raises ``ValueError`` (or
        :class:`~policystrata.errors.InputError` for IR text) on bad input.

        ``strict=False`` ignores unknown keys (imported traces are forward compatible).
        """
        if isinstance(obj, SemanticQuery):
            return obj
        if isinstance(obj, str):
            from policystrata.ir.parse import parse_ir

            return parse_ir(obj)
        if not isinstance(obj, dict):
            raise ValueError(f"a semantic query is IR text or a mapping, got {type(obj).__name__}")
        unknown = [k for k in obj if k not in QUERY_KEYS]
        if unknown and strict:
            raise ValueError(
                f"unknown key '{unknown[0]}' in semantic query (expected {', '.join(QUERY_KEYS)})"
            )
        if "metric" not in obj or not isinstance(obj["metric"], str):
            close = [k for k in unknown if did_you_mean(str(k), ["metric"])]
            hint = f" (unknown key '{close[0]}': did you mean 'metric'?)" if close else ""
            raise ValueError(f"a semantic query needs a metric name{hint}")
        dims = obj.get("dimensions") or []
        if isinstance(dims, str):
            dims = [dims]
        if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
            raise ValueError("dimensions must be a list of names")
        limit = obj.get("limit")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        for key in ("time_range", "grain"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise ValueError(f"{key} must be a name, got {obj[key]!r}")
        return cls(
            metric=obj["metric"],
            dimensions=tuple(dims),
            filters=tuple(_filters(obj.get("filters"))),
            time_range=obj.get("time_range"),
            grain=obj.get("grain"),
            limit=limit,
        )


def _const(value: Any) -> Value:
    if isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):  # YAML dates in filters
        return str(value.isoformat())
    raise ValueError(f"filter value must be a string, number or boolean, got {value!r}")


def _one_filter(dim: str, spec: Any, op: str | None = None) -> Filter:
    if op is not None:
        if op == "<>":
            op = "!="
        if op not in OPS:
            raise ValueError(f"unknown filter operator '{op}' (expected one of {', '.join(OPS)})")
        values = tuple(_const(v) for v in spec) if isinstance(spec, list) else (_const(spec),)
        return Filter(dimension=dim, op=op, values=values)  # type: ignore[arg-type]
    if isinstance(spec, list):
        return Filter(dimension=dim, op="in", values=tuple(_const(v) for v in spec))
    return Filter(dimension=dim, op="=", values=(_const(spec),))


def _filters(raw: Any) -> list[Filter]:
    """Filters as ``{dim: value}``, ``{dim: [values]}``, ``{dim: {op: value}}``, or a list of
    ``{dimension, op, value}`` mappings or condition strings (``"plan = 'pro'"``)."""
    if raw is None:
        return []
    out: list[Filter] = []
    if isinstance(raw, dict):
        for dim, spec in raw.items():
            if isinstance(spec, dict):
                for op, value in spec.items():
                    out.append(_one_filter(str(dim), value, str(op)))
            else:
                out.append(_one_filter(str(dim), spec))
        return out
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, str):
                from policystrata.ir.parse import parse_ir

                out.extend(parse_ir(f"x where {item}").filters)
            elif isinstance(item, dict):
                extra = set(item) - {"dimension", "field", "op", "value", "values"}
                if extra:
                    raise ValueError(f"unknown key '{sorted(extra)[0]}' in filter")
                dim = item.get("dimension", item.get("field"))
                if not isinstance(dim, str):
                    raise ValueError("a filter needs a dimension name")
                value = item.get("values", item.get("value"))
                op = item.get("op")
                if op is None:
                    out.append(_one_filter(dim, value))
                else:
                    out.append(_one_filter(dim, value, str(op)))
            else:
                raise ValueError(f"a filter is a mapping or a condition string, got {item!r}")
        return out
    raise ValueError(f"filters must be a mapping or a list, got {type(raw).__name__}")


def render_name(name: str) -> str:
    """A bare identifier, or a double-quoted one when it is not plain or is a keyword."""
    if _PLAIN.match(name) and name.lower() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def render_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"
