"""A dbt Semantic Layer (MetricFlow YAML) -> ``dbt_*`` case facts (``rules/decl_dbt.dl``).

The files are read and validated with dbt-semantic-interfaces (:mod:`.read`); what they define
is lowered here, each fact with the ``file:line`` of its item, case id first:

- semantic models and the table their ``model: ref(...)`` names;
- dimensions, their type, the columns their ``expr`` reads (parsed with the SQL parser; default:
  the column named like the dimension), and ``sensitive: true`` in their meta (``meta``,
  ``config.meta``, or the semantic model's ``config.meta``);
- measures, their ``agg``, and the aggregate they compute in the form of the policy's
  ``metric_agg`` / ``metric_filter`` (:mod:`.exprs`);
- metrics, their type, the measure a simple or cumulative metric aggregates (a simple metric
  with ``metric_aggregation_params`` is its own measure; a measure with ``create_metric: true``
  is a simple metric of the same name), and the predicates of their
  ``filter`` (Jinja items such as ``{{ Dimension('ticket__escalated') }}`` resolved to their
  semantic model's column).

What cannot be lowered to comparable facts is a fact too (``dbt_measure_unlowered``,
``dbt_metric_unlowered``: a ratio or derived metric's expression, a cumulative metric's window,
a filter on a metric), so the rules can say what was not compared.

The pass is pure: text in, facts out. It judges nothing; ``rules/dbt.dl`` compares the facts
with the policy.

>>> from policystrata.case import SourceText
>>> text = '''
... semantic_models:
...   - name: tickets
...     model: ref('support_tickets')
...     defaults: {agg_time_dimension: opened_at}
...     entities: [{name: ticket, type: primary, expr: id}]
...     dimensions:
...       - {name: escalated, type: categorical}
...       - {name: opened_at, type: time, type_params: {time_granularity: day}}
...     measures: [{name: tickets, agg: count_distinct, expr: id}]
... metrics:
...   - name: escalations
...     type: simple
...     type_params: {measure: tickets}
...     filter: "{{ Dimension('ticket__escalated') }}"
... '''
>>> facts = lower_semantic_layer("c1", (SourceText("sl.yml", text),))
>>> print("\\n".join(f.render() for f in facts if f.pred.startswith("dbt_m")))
dbt_measure("c1", "tickets", "tickets", "count_distinct")
dbt_measure_agg("c1", "tickets", "count", true, "support_tickets", "id")
dbt_metric("c1", "escalations", "simple")
dbt_metric_measure("c1", "escalations", "tickets")
dbt_metric_filter("c1", "escalations", "support_tickets", "escalated", "=", "literal", true)
>>> str(facts.provenance(next(f for f in facts if f.pred == "dbt_metric_filter"))[0])
'sl.yml:15'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policystrata.case import SourceText
from policystrata.facts import FactSet, Provenance
from policystrata.lower.dbt.exprs import (
    Unlowerable,
    columns_read,
    filter_preds,
    measure_aggregate,
    parse,
)
from policystrata.lower.dbt.read import SemanticLayer, Where, read_semantic_layer

__all__ = ["lower_semantic_layer", "read_semantic_layer"]


def lower_semantic_layer(case_id: str, files: Sequence[SourceText]) -> FactSet:
    """The ``dbt_*`` facts of the semantic layer made of ``files`` (see the module docstring).
    What dbt-semantic-interfaces rejects raises :class:`~policystrata.errors.InputErrors`."""
    layer = read_semantic_layer(tuple(files))
    return _Lowering(case_id, layer).run()


def _sensitive(config: Any) -> bool:
    meta = getattr(config, "meta", None) or {}
    value = meta.get("sensitive") if isinstance(meta, dict) else None
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))


class _Lowering:
    def __init__(self, case_id: str, layer: SemanticLayer) -> None:
        self.c = case_id
        self.layer = layer
        self.facts = FactSet()
        self.models = {sm.name: sm for sm in layer.semantic_models}
        self.measures = {m.name: (sm, m) for sm in layer.semantic_models for m in sm.measures}

    def where(self, *key: str) -> Where:
        return self.layer.where[key]

    def add(self, pred: str, *args: Any, prov: Provenance) -> None:
        self.facts.add(pred, self.c, *args, prov=prov)

    def run(self) -> FactSet:
        for sm in self.layer.semantic_models:
            self.semantic_model(sm)
        for metric in self.layer.metrics:
            self.metric(metric)
        return self.facts

    # -- semantic models -----------------------------------------------------------------

    def semantic_model(self, sm: Any) -> None:
        table = sm.node_relation.alias
        self.add(
            "dbt_semantic_model", sm.name, table, prov=self.where("semantic_model", sm.name).prov()
        )
        for d in sm.dimensions:
            where = self.where("dimension", sm.name, d.name)
            self.add("dbt_dimension", sm.name, d.name, d.type.value, prov=where.prov())
            try:
                columns = columns_read(d.expr if d.expr is not None else d.name)
            except Unlowerable:
                columns = []  # matched by name only
            for col in columns:
                self.add(
                    "dbt_dimension_column",
                    sm.name,
                    d.name,
                    table,
                    col,
                    prov=where.prov("expr") if d.expr is not None else where.prov(),
                )
            if _sensitive(d.config):
                self.add("dbt_dimension_sensitive", sm.name, d.name, prov=where.prov())
        metrics = {m.name for m in self.layer.metrics}
        for m in sm.measures:
            where = self.where("measure", sm.name, m.name)
            self.measure(sm, m.name, m.agg.value, m.expr if m.expr is not None else m.name, where)
            if m.create_metric and m.name not in metrics:
                # dbt makes a simple metric of the measure, named like it
                self.add("dbt_metric", m.name, "simple", prov=where.prov("create_metric"))
                self.add("dbt_metric_measure", m.name, m.name, prov=where.prov("create_metric"))

    def measure(self, sm: Any, name: str, agg: str, expr: Any, where: Where) -> None:
        table = sm.node_relation.alias
        self.add("dbt_measure", sm.name, name, agg, prov=where.prov())
        try:
            a = measure_aggregate(agg, str(expr))
        except Unlowerable as exc:
            self.add("dbt_measure_unlowered", name, str(exc), prov=where.prov())
            return
        self.add("dbt_measure_agg", name, a.func, a.distinct, table, a.column, prov=where.prov())
        for p in a.preds:
            self.add(
                "dbt_measure_filter",
                name,
                p.table or table,
                p.column,
                p.op,
                p.vkind,
                p.value,
                prov=where.prov("expr"),
            )

    # -- metrics -------------------------------------------------------------------------

    def metric(self, metric: Any) -> None:
        where = self.where("metric", metric.name)
        kind = metric.type.value
        self.add("dbt_metric", metric.name, kind, prov=where.prov())
        tp = metric.type_params
        measure: str | None = None
        filters: list[tuple[str, tuple[str, ...]]] = []
        if kind in ("simple", "cumulative") and tp.measure is not None:
            measure = tp.measure.name
            self.add("dbt_metric_measure", metric.name, measure, prov=where.prov("type_params"))
            if tp.measure.filter is not None:
                at: tuple[str, ...] = ("type_params", "measure", "filter")
                filters += [(f.where_sql_template, at) for f in tp.measure.filter.where_filters]
        elif kind == "simple" and tp.metric_aggregation_params is not None:
            params = tp.metric_aggregation_params
            sm = self.models.get(params.semantic_model)
            if sm is None:
                self.unlowered(
                    metric,
                    "expression",
                    f"semantic model {params.semantic_model} is not defined",
                    where,
                )
            else:
                measure = metric.name
                expr = tp.expr if tp.expr is not None else metric.name
                self.measure(sm, measure, params.agg.value, expr, where)
                self.add("dbt_metric_measure", metric.name, measure, prov=where.prov())
        else:
            self.unlowered(metric, "expression", _why_not(kind), where)
        if kind == "cumulative":
            self.unlowered(
                metric,
                "window",
                "a cumulative metric's window is not compared: policy.yaml metrics have none",
                where,
            )
        if metric.filter is not None:
            filters += [(f.where_sql_template, ("filter",)) for f in metric.filter.where_filters]
        for template, at in filters:
            try:
                preds = filter_preds(template, lambda item: self.resolve(item, measure))
            except Unlowerable as exc:
                self.unlowered(metric, "filter", str(exc), where)
                continue
            for p in preds:
                self.add(
                    "dbt_metric_filter",
                    metric.name,
                    p.table or self.table_of(measure),
                    p.column,
                    p.op,
                    p.vkind,
                    p.value,
                    prov=where.prov(*at),
                )

    def unlowered(self, metric: Any, part: str, reason: str, where: Where) -> None:
        self.add("dbt_metric_unlowered", metric.name, part, reason, prov=where.prov())

    def table_of(self, measure: str | None) -> str:
        hit = self.measures.get(measure or "")
        return hit[0].node_relation.alias if hit else ""

    # -- Jinja query items of filters --------------------------------------------------------

    def resolve(self, item: Any, measure: str | None) -> tuple[str, Any] | None:
        """(table, expression) a filter's query item stands for: a dimension (through the
        entity path, or of the metric's own semantic model), ``metric_time`` (the measure's
        aggregation time dimension) or an entity's key column. ``Metric(...)`` items are not
        resolved."""
        from dbt_semantic_interfaces.naming.dundered import StructuredDunderedName
        from dbt_semantic_interfaces.parsing.text_input.ti_description import QueryItemType

        name = StructuredDunderedName.parse_name(item.item_name)
        links = [*item.entity_path, *(e.element_name for e in name.entity_links)]
        element = name.element_name
        own = self.measures.get(measure or "")
        if item.item_type is QueryItemType.METRIC:
            return None
        if item.item_type is QueryItemType.ENTITY:
            return self._entity(element, own[0] if own else None)
        if element == "metric_time" and not links:
            if own is None:
                return None
            sm, m = own
            dim = m.agg_time_dimension or (sm.defaults.agg_time_dimension if sm.defaults else None)
            return self._dimension(dim or "", [sm]) if dim else None
        if links:
            models = [
                sm
                for sm in self.layer.semantic_models
                if any(e.name == links[-1] for e in sm.entities)
            ]
        else:
            models = [own[0]] if own else []
        return self._dimension(element, models)

    def _dimension(self, name: str, models: list[Any]) -> tuple[str, Any] | None:
        for sm in models:
            for d in sm.dimensions:
                if d.name == name:
                    return sm.node_relation.alias, self._expr(d.expr, d.name)
        return None

    def _entity(self, name: str, preferred: Any) -> tuple[str, Any] | None:
        models = [preferred] if preferred is not None else []
        models += [sm for sm in self.layer.semantic_models if sm is not preferred]
        for sm in models:
            for e in sm.entities:
                if e.name == name:
                    return sm.node_relation.alias, self._expr(e.expr, e.name)
        return None

    @staticmethod
    def _expr(expr: Any, name: str) -> Any:
        return parse(str(expr) if expr is not None else name, "expr")


def _why_not(kind: str) -> str:
    if kind in ("ratio", "derived"):
        return (
            f"a {kind} metric combines other metrics; its expression is not compared with "
            "policy.yaml (its input metrics are, when policy governs them)"
        )
    if kind == "conversion":
        return "a conversion metric's expression is not compared with policy.yaml"
    return f"the {kind} metric names no measure"
