"""dbt Semantic Layer (MetricFlow) import: semantic models and metrics -> facts, compared with
the policy.

Read with PyYAML (``dbt-semantic-interfaces`` pulls in dbt's dependency tree; we read a
documented subset instead, see ``docs/scanner.md``):

- ``semantic_models[]``: ``name``, ``model`` (``ref('table')``; the table name), ``dimensions[]``
  (``name``, ``type``, ``expr``, ``meta``/``config.meta`` with ``sensitive``), ``measures[]``
  (``name``, ``agg``: sum, count, count_distinct, average, min, max, median, sum_boolean;
  ``expr``: a column, default the measure name);
- ``metrics[]``: ``name``, ``type`` (simple), ``type_params.measure`` (a name or
  ``{name: ...}``), ``filter``.

Other keys are ignored. Problems reported by :func:`compare` (stable ``kind`` names):
``metric_missing_from_policy``, ``metric_missing_from_dbt`` (stale in policy),
``stale_metric_alias`` (dbt still uses a retired alias), ``dimension_missing_from_policy``,
``dimension_missing_from_dbt``, ``sensitive_column_without_metadata``,
``aggregation_mismatch`` (``agg: sum`` where policy says ``count``), ``expression_mismatch``
(another column or table), ``filter_mismatch``.

>>> model = load_semantic_text('''
... semantic_models:
...   - name: invoices
...     model: ref('invoices')
...     measures:
...       - {name: net_amount, agg: count, expr: net_amount_cents}
... metrics:
...   - {name: net_revenue, type: simple, type_params: {measure: net_amount}}
... ''', "semantic.yml")
>>> from policystrata.model import load_domain
>>> [i.kind for i in compare(load_domain("support_saas"), model) if i.subject == "net_revenue"]
['aggregation_mismatch']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policystrata.errors import InputError
from policystrata.facts import FactSet, Provenance
from policystrata.model import Domain
from policystrata.model.yamlsrc import YamlDoc, load_yaml_file, load_yaml_text

#: MetricFlow aggregation -> (SQL function, DISTINCT)
AGG = {
    "sum": ("sum", False),
    "count": ("count", False),
    "count_distinct": ("count", True),
    "average": ("avg", False),
    "avg": ("avg", False),
    "min": ("min", False),
    "max": ("max", False),
    "median": ("median", False),
    "sum_boolean": ("sum", False),
    "percentile": ("percentile", False),
}
_REF = re.compile(r"""ref\(\s*['"]([^'"]+)['"]\s*\)""")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class DbtDimension:
    name: str
    table: str
    column: str
    kind: str
    sensitive: bool | None
    line: int | None


@dataclass
class DbtMeasure:
    name: str
    table: str
    agg: str
    expr: str
    line: int | None


@dataclass
class DbtMetric:
    name: str
    measure: str | None
    filter: str | None
    line: int | None


@dataclass
class SemanticModel:
    """The subset of a MetricFlow file we read."""

    file: str
    dimensions: list[DbtDimension] = field(default_factory=list)
    measures: dict[str, DbtMeasure] = field(default_factory=dict)
    metrics: list[DbtMetric] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)  # semantic model name -> table


@dataclass
class Issue:
    """One difference between the semantic layer and the policy."""

    kind: str
    subject: str
    message: str
    file: str
    line: int | None
    policy_line: int | None = None
    severity: str = "medium"
    surface: str = "compiler"
    witness_class: str = "semantic_drift"

    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "policy_line": self.policy_line,
            "severity": self.severity,
            "surface": self.surface,
            "witness_class": self.witness_class,
        }


def _meta(item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("meta")
    if not isinstance(meta, dict):
        config = item.get("config")
        meta = config.get("meta") if isinstance(config, dict) else None
    return meta if isinstance(meta, dict) else {}


def _table(sm: dict[str, Any]) -> str:
    model = str(sm.get("model") or sm.get("name") or "")
    m = _REF.search(model)
    return m.group(1) if m else model


def parse_semantic(doc: YamlDoc) -> SemanticModel:
    """The subset of ``doc`` we read; a wrong shape is an InputError at its line."""
    data = doc.data or {}
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping with semantic_models and/or metrics")
    out = SemanticModel(file=doc.file)
    sms = data.get("semantic_models") or []
    if not isinstance(sms, list):
        raise doc.error(("semantic_models",), "expected a list")
    for i, sm in enumerate(sms):
        if not isinstance(sm, dict) or "name" not in sm:
            raise doc.error(("semantic_models", i), "a semantic model needs a name")
        table = _table(sm)
        out.tables[str(sm["name"])] = table
        for key in ("dimensions", "measures", "entities"):
            if sm.get(key) is not None and not isinstance(sm[key], list):
                raise doc.error(("semantic_models", i, key), f"{key} must be a list")
        for j, d in enumerate(sm.get("dimensions") or []):
            if not isinstance(d, dict) or "name" not in d:
                raise doc.error(("semantic_models", i, "dimensions", j), "a dimension needs a name")
            _scalar(doc, ("semantic_models", i, "dimensions", j), d, "name", "expr")
            sens = _meta(d).get("sensitive")
            out.dimensions.append(
                DbtDimension(
                    name=str(d["name"]),
                    table=table,
                    column=str(d.get("expr") or d["name"]),
                    kind=str(d.get("type", "categorical")),
                    sensitive=bool(sens) if sens is not None else None,
                    line=doc.line(("semantic_models", i, "dimensions", j)),
                )
            )
        for j, m in enumerate(sm.get("measures") or []):
            if not isinstance(m, dict) or "name" not in m or "agg" not in m:
                raise doc.error(
                    ("semantic_models", i, "measures", j), "a measure needs a name and an agg"
                )
            _scalar(doc, ("semantic_models", i, "measures", j), m, "name", "agg", "expr")
            out.measures[str(m["name"])] = DbtMeasure(
                name=str(m["name"]),
                table=table,
                agg=str(m["agg"]).lower(),
                expr=str(m.get("expr") or m["name"]),
                line=doc.line(("semantic_models", i, "measures", j)),
            )
    metrics = data.get("metrics") or []
    if not isinstance(metrics, list):
        raise doc.error(("metrics",), "expected a list")
    for i, m in enumerate(metrics):
        if not isinstance(m, dict) or "name" not in m:
            raise doc.error(("metrics", i), "a metric needs a name")
        params = m.get("type_params") or {}
        if not isinstance(params, dict):
            raise doc.error(("metrics", i, "type_params"), "type_params must be a mapping")
        measure = params.get("measure")
        if isinstance(measure, dict):
            measure = measure.get("name")
        if measure is not None and not isinstance(measure, str):
            raise doc.error(("metrics", i, "type_params", "measure"), "measure must be a name")
        filt = m.get("filter")
        out.metrics.append(
            DbtMetric(
                name=str(m["name"]),
                measure=str(measure) if measure else None,
                filter=str(filt) if filt else None,
                line=doc.line(("metrics", i)),
            )
        )
    return out


def _scalar(doc: YamlDoc, path: tuple[str | int, ...], item: dict[str, Any], *keys: str) -> None:
    """``item[key]`` (when present) must be a name or an expression: a string (or a number)."""
    for key in keys:
        value = item.get(key)
        if value is not None and not isinstance(value, str | int | float):
            raise doc.error((*path, key), f"{key} must be a string")


def load_semantic_text(text: str, file: str) -> SemanticModel:
    return parse_semantic(load_yaml_text(text, file))


def load_semantic_file(path: Path, display: str | None = None) -> SemanticModel:
    return parse_semantic(load_yaml_file(path, display or path.name))


def lower_semantic_model(model: SemanticModel) -> FactSet:
    """The model as facts (``dbt_metric``, ``dbt_measure``, ``dbt_dimension``,
    ``dbt_dimension_sensitive``) with ``file:line`` provenance.

    >>> m = load_semantic_text("metrics: [{name: x, type_params: {measure: y}}]", "s.yml")
    >>> lower_semantic_model(m).to_lines()
    'dbt_metric("x", "y")\\n'
    """
    facts = FactSet()
    for d in model.dimensions:
        prov = Provenance(model.file, line=d.line)
        facts.add("dbt_dimension", d.name, d.table, d.column, prov=prov)
        if d.sensitive:
            facts.add("dbt_dimension_sensitive", d.name, prov=prov)
    for ms in model.measures.values():
        facts.add(
            "dbt_measure",
            ms.name,
            ms.agg,
            ms.table,
            ms.expr,
            prov=Provenance(model.file, line=ms.line),
        )
    for m in model.metrics:
        facts.add("dbt_metric", m.name, m.measure or "", prov=Provenance(model.file, line=m.line))
    return facts


def _split(column: str) -> tuple[str, str]:
    table, _, col = column.rpartition(".")
    return table, col


def _policy_filter(expression: str) -> str | None:
    m = re.search(r"filter\s*\(\s*where\s+(.+)\)\s*$", expression, re.IGNORECASE | re.DOTALL)
    return m.group(1).strip() if m else None


def compare(domain: Domain, model: SemanticModel) -> list[Issue]:
    """Differences between the semantic layer and the policy, in file order."""
    pol = domain.policy
    issues: list[Issue] = []

    def pline(*path: str | int) -> int | None:
        return domain.line("policy", *path)

    dbt_metrics = {m.name: m for m in model.metrics}
    for m in model.metrics:
        canonical = pol.resolve_metric(m.name)
        if canonical is None:
            issues.append(
                Issue(
                    "metric_missing_from_policy",
                    m.name,
                    f"dbt metric {m.name} is not governed by policy.yaml (no metric or alias)",
                    model.file,
                    m.line,
                    severity="high",
                    surface="manifest",
                    witness_class="over_permissive",
                )
            )
            continue
        if canonical != m.name:
            issues.append(
                Issue(
                    "stale_metric_alias",
                    m.name,
                    f"dbt metric {m.name} uses a retired alias of {canonical}",
                    model.file,
                    m.line,
                    pline("metrics", canonical),
                    severity="low",
                    surface="manifest",
                )
            )
        issues.extend(_compare_expression(domain, model, m, canonical))
    for name in pol.metrics:
        aliases = set(pol.metrics[name].aliases)
        if name not in dbt_metrics and not aliases & set(dbt_metrics) and model.metrics:
            issues.append(
                Issue(
                    "metric_missing_from_dbt",
                    name,
                    f"policy metric {name} is not defined in {model.file} (stale policy entry "
                    "or a metric dropped from the semantic layer)",
                    model.file,
                    None,
                    pline("metrics", name),
                    severity="low",
                    witness_class="over_restrictive",
                )
            )
    by_column = {(d.table, d.column): d for d in model.dimensions}
    by_name = {d.name: d for d in model.dimensions}
    policy_columns = {}
    for name, dim in pol.dimensions.items():
        table, col = _split(dim.column)
        policy_columns[(table, col)] = name
        found = by_column.get((table, col)) or by_name.get(name)
        if found is None:
            if model.dimensions:
                issues.append(
                    Issue(
                        "dimension_missing_from_dbt",
                        name,
                        f"policy dimension {name} ({dim.column}) is not a dimension in "
                        f"{model.file}",
                        model.file,
                        None,
                        pline("dimensions", name),
                        severity="low",
                        witness_class="over_restrictive",
                    )
                )
            continue
        if dim.sensitive and not found.sensitive:
            issues.append(
                Issue(
                    "sensitive_column_without_metadata",
                    name,
                    f"{dim.column} is sensitive in policy.yaml but dbt dimension {found.name} "
                    "has no `meta: {sensitive: true}`",
                    model.file,
                    found.line,
                    pline("dimensions", name),
                    severity="high",
                    surface="validator",
                    witness_class="over_permissive",
                )
            )
    for d in model.dimensions:
        if (d.table, d.column) in policy_columns or d.name in pol.dimensions:
            continue
        if d.kind == "time":
            continue  # time dimensions bucket metrics; policy governs them through time ranges
        issues.append(
            Issue(
                "dimension_missing_from_policy",
                d.name,
                f"dbt dimension {d.name} ({d.table}.{d.column}) is not governed by policy.yaml",
                model.file,
                d.line,
                severity="medium",
                surface="manifest",
                witness_class="over_permissive",
            )
        )
    return issues


def _compare_expression(
    domain: Domain, model: SemanticModel, m: DbtMetric, canonical: str
) -> list[Issue]:
    agg = domain.aggs.get(canonical)
    metric = domain.policy.metrics[canonical]
    pline = domain.line("policy", "metrics", canonical, "expression")
    if agg is None or m.measure is None:
        return []
    measure = model.measures.get(m.measure)
    if measure is None:
        return [
            Issue(
                "expression_mismatch",
                m.name,
                f"dbt metric {m.name} refers to measure {m.measure}, which no semantic model "
                "defines",
                model.file,
                m.line,
                pline,
            )
        ]
    out = []
    func, distinct = AGG.get(measure.agg, (measure.agg, False))
    want = f"{agg.func}({'distinct ' if agg.distinct else ''}...)"
    got = f"{func}({'distinct ' if distinct else ''}...)"
    if (func, distinct) != (agg.func, agg.distinct):
        out.append(
            Issue(
                "aggregation_mismatch",
                m.name,
                f"dbt measure {measure.name} aggregates with `agg: {measure.agg}` ({got}) but "
                f"policy metric {canonical} is `{metric.expression}` ({want})",
                model.file,
                measure.line,
                pline,
            )
        )
    expr_col = measure.expr.strip()
    moved = (measure.table, expr_col) != (agg.table, agg.column)
    if _IDENT.match(expr_col) and moved and agg.column != "*":
        out.append(
            Issue(
                "expression_mismatch",
                m.name,
                f"dbt measure {measure.name} reads {measure.table}.{expr_col} but policy "
                f"metric {canonical} reads {agg.table}.{agg.column}",
                model.file,
                measure.line,
                pline,
            )
        )
    want_filter = _policy_filter(metric.expression)
    if want_filter and not m.filter and want_filter.split(".")[-1] not in measure.expr:
        out.append(
            Issue(
                "filter_mismatch",
                m.name,
                f"policy metric {canonical} filters ({want_filter}); dbt metric {m.name} has no "
                "filter",
                model.file,
                m.line,
                pline,
            )
        )
    return out


def integration_findings(config: Any, domain: Domain, path: Path) -> list[Any]:
    """Scan findings for one dbt file of the scan config (``dbt.files``)."""
    from policystrata.scan.findings import Finding, Location, stable_id

    rel = config.relative(path)
    try:
        model = load_semantic_file(path, display=rel)
    except InputError:
        raise
    out = []
    pol_file = (
        config.model.domain_path.rstrip("/") + "/policy.yaml"
        if config.model.domain_path
        else "policy.yaml"
    )
    for issue in compare(domain, model):
        location = Location(file=rel, line=issue.line)
        if issue.line is None and issue.policy_line and config.model.domain_path:
            # a policy entry the semantic layer lacks: point at it in the repository
            location = Location(file=pol_file, line=issue.policy_line)
        trail = [{"file": rel, "line": issue.line, "message": issue.message}]
        if issue.policy_line:
            trail.append(
                {"file": pol_file, "line": issue.policy_line, "message": "the policy's definition"}
            )
        out.append(
            Finding(
                id=stable_id(f"dbt.{issue.kind}", rel, issue.subject, issue.kind),
                kind="integration",
                rule_id=f"dbt.{issue.kind}",
                check=issue.kind,
                key=issue.subject,
                message=issue.message,
                severity=issue.severity,  # type: ignore[arg-type]
                confidence="high",
                surface=issue.surface,
                owner="dbt semantic layer",
                witness_class=issue.witness_class,
                location=location,
                what_changed=issue.message,
                probable_fix=_issue_fix(issue),
                recheck=(
                    f"strata check-integration dbt-semantic {config.domain_display()} --path {rel}"
                ),
                details={"issue": issue.to_json(), "trail": trail},
            )
        )
    return out


def _issue_fix(issue: Issue) -> str:
    return {
        "metric_missing_from_policy": f"add {issue.subject} to policy.yaml metrics (with "
        "allowed_roles), or remove it from the semantic layer",
        "metric_missing_from_dbt": f"define {issue.subject} in the semantic layer, or retire it "
        "from policy.yaml",
        "stale_metric_alias": f"rename dbt metric {issue.subject} to its canonical name",
        "dimension_missing_from_policy": f"add {issue.subject} to policy.yaml dimensions (with "
        "allowed_roles and sensitive), or remove it from the semantic layer",
        "dimension_missing_from_dbt": f"define {issue.subject} in the semantic layer, or retire "
        "it from policy.yaml",
        "sensitive_column_without_metadata": f"add `meta: {{sensitive: true}}` to dbt dimension "
        f"{issue.subject}",
        "aggregation_mismatch": f"make the dbt measure of {issue.subject} aggregate as "
        "policy.yaml's expression does",
        "expression_mismatch": f"make the dbt measure of {issue.subject} read the column "
        "policy.yaml's expression reads",
        "filter_mismatch": f"add the policy's filter to dbt metric {issue.subject}",
    }.get(issue.kind, issue.message)
