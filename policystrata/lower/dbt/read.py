"""dbt Semantic Layer files -> dbt-semantic-interfaces objects, each with its file and line.

A dbt project file (``models/*.yml``) holds ``semantic_models:`` and ``metrics:`` lists in one
YAML document, in dbt's project format (``model: ref('orders')``, ``meta`` or ``config: {meta,
enabled, group}``). dbt-semantic-interfaces (DSI, dbt's own parser and validation for semantic
manifests) validates one object per document in the semantic-manifest format (``node_relation``,
``config: {meta}``) and needs a project configuration. :func:`read_semantic_layer` bridges the
two, the way dbt's parser does:

1. each file is parsed by our YAML loader (the line of every key and list item);
2. each semantic model and metric is translated: ``model: ref('x')`` (read with Jinja's parser,
   not executed: one ``ref`` / ``source`` call of string constants) becomes ``node_relation``
   alias ``x``; ``meta`` moves into ``config.meta``; a semantic model's ``config.meta`` is
   inherited by its dimensions, measures and entities; items with ``config: {enabled: false}``
   are dropped and ``group`` is ignored; metric inputs written as names become ``{name: ...}``;
3. each item is validated against DSI's JSON schema and parsed into DSI's pydantic objects;
4. all files form one semantic manifest with a default project configuration (no time spines);
   as ``dbt parse`` does, the metrics of ``create_metric: true`` measures and the metrics' input
   measures are filled in and DSI's semantic-manifest validation rules run over it.

What DSI rejects (a schema error, a parse error, an ERROR of its manifest validation) is an
:class:`~policystrata.errors.InputError` at the file and line of the item it names, with DSI's
message; all of them are raised together (:class:`~policystrata.errors.InputErrors`). DSI's
warnings and future errors are kept as notes. ``saved_queries`` and every other top-level key of
a dbt file (``models``, ``sources``, ...) are not read.

>>> layer = read_semantic_layer((SourceText("m.yml", '''
... semantic_models:
...   - name: orders
...     model: ref('orders')
...     defaults: {agg_time_dimension: ordered_at}
...     entities: [{name: order, type: primary, expr: id}]
...     dimensions: [{name: ordered_at, type: time, type_params: {time_granularity: day}}]
...     measures: [{name: revenue, agg: sum, expr: amount}]
... metrics:
...   - {name: revenue, type: simple, type_params: {measure: revenue}}
... '''),))
>>> layer.semantic_models[0].node_relation.alias, str(layer.where[("measure", "orders", "revenue")])
('orders', 'm.yml:8')
>>> read_semantic_layer((SourceText("m.yml", "metrics: [{name: mrr, type: simple}]"),))
Traceback (most recent call last):
...
policystrata.errors.InputErrors: m.yml:1: metrics[0]: 'type_params' is a required property
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policystrata.case import SourceText
from policystrata.errors import InputError, InputErrors, did_you_mean, type_name
from policystrata.facts import Provenance
from policystrata.model.yamlsrc import KeyPath, YamlDoc, load_yaml_text

#: The top-level keys of a dbt file that define the semantic layer.
SECTIONS = ("semantic_models", "metrics")
#: Element lists of a semantic model and the name DSI's issues give their items.
ELEMENTS = {"dimensions": "dimension", "measures": "measure", "entities": "entity"}
#: Where a model's table lives when the file does not say (dbt fills in the target schema).
DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class Where:
    """An item of a dbt file: the file's YAML and the item's key path in it."""

    doc: YamlDoc
    path: KeyPath

    @property
    def file(self) -> str:
        return self.doc.file

    def line(self, *sub: str | int) -> int | None:
        return self.doc.line((*self.path, *sub))

    def prov(self, *sub: str | int) -> Provenance:
        return Provenance(self.doc.file, line=self.line(*sub))

    def error(self, message: str, *sub: str | int) -> InputError:
        return self.doc.error((*self.path, *sub), message)

    def __str__(self) -> str:
        return str(self.prov())


@dataclass
class SemanticLayer:
    """The semantic models and metrics of a dbt Semantic Layer, as DSI parsed them (before its
    transformations: what the files say), with where each item is written.

    ``where`` keys: ``("semantic_model", sm)``, ``("dimension" | "measure" | "entity", sm,
    name)``, ``("metric", name)``.
    """

    semantic_models: list[Any] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    where: dict[tuple[str, ...], Where] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=16)
def read_semantic_layer(files: tuple[SourceText, ...]) -> SemanticLayer:
    """Parse and validate the files as one semantic layer (see the module docstring). The
    result is cached by the files' names and texts: treat it as read-only."""
    layer = SemanticLayer()
    errors: list[InputError] = []
    docs = []
    for f in files:
        doc = load_yaml_text(f.text, f.name)
        docs.append(doc)
        errors += _read_file(doc, layer)
    if not errors:
        errors += _validate_manifest(layer, docs)
    if errors:
        raise InputErrors(sorted(_dedupe(errors), key=_error_order))
    return layer


def _error_order(e: InputError) -> tuple[str, int, str]:
    return (e.file or "", e.line or 0, str(e))


def _dedupe(errors: Iterable[InputError]) -> list[InputError]:
    seen: dict[str, InputError] = {}
    for e in errors:
        seen.setdefault(str(e), e)
    return list(seen.values())


# ------------------------------------------------------------------------------ one file


def _read_file(doc: YamlDoc, layer: SemanticLayer) -> list[InputError]:
    data = doc.data
    if data is None:
        return [doc.error((), "the file is empty: expected semantic_models and/or metrics")]
    if not isinstance(data, dict):
        return [
            doc.error(
                (), f"expected a mapping with semantic_models and/or metrics, got {type_name(data)}"
            )
        ]
    if not any(key in data for key in SECTIONS):
        return [
            doc.error(
                (),
                "no semantic_models or metrics in this file (a dbt Semantic "
                "Layer file defines semantic_models: and/or metrics:)",
            )
        ]
    errors: list[InputError] = []
    for section in SECTIONS:
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            errors.append(doc.error((section,), f"expected a list, got {type_name(items)}"))
            continue
        for i, item in enumerate(items):
            where = Where(doc, (section, i))
            try:
                if section == "semantic_models":
                    _read_semantic_model(item, where, layer)
                else:
                    _read_metric(item, where, layer)
            except InputErrors as exc:
                errors += exc.errors
            except InputError as exc:
                errors.append(exc)
    return errors


def _config(item: dict[str, Any], inherited: dict[str, Any] | None = None) -> bool:
    """Translate ``meta`` / ``config`` the way dbt's parser does, in place: ``meta`` (and the
    inherited semantic model ``config.meta``) into ``config.meta``, ``group`` dropped. False
    when ``config: {enabled: false}`` disables the item."""
    meta: dict[str, Any] = dict(inherited or {})
    top = item.pop("meta", None)
    if isinstance(top, dict):
        meta.update(top)
    elif top is not None:
        item["meta"] = top  # let DSI's schema say what is wrong with it
    item.pop("group", None)
    config = item.get("config")
    if isinstance(config, dict):
        config = dict(config)
        if config.pop("enabled", True) is False:
            return False
        config.pop("group", None)
        own = config.get("meta")
        if isinstance(own, dict):
            meta.update(own)
        if meta or "meta" in config:
            config["meta"] = meta if isinstance(own, dict) or own is None else own
        item["config"] = config
    elif config is None and meta:
        item["config"] = {"meta": meta}
    return True


def _ref(model: Any, where: Where) -> str:
    """The model name of ``model: ref('orders')`` (also ``ref('package', 'orders')``,
    ``ref('orders', v=2)``, ``source('raw', 'orders')``): the Jinja expression dbt renders,
    parsed with Jinja's parser and read, never executed (it must be one such call of string
    constants).

    >>> where = Where(load_yaml_text("model: x", "s.yml"), ())
    >>> _ref("ref('jaffle', 'orders', v=2)", where), _ref('source("raw", "events")', where)
    ('orders', 'events')
    """
    from jinja2 import TemplateSyntaxError, nodes
    from jinja2.sandbox import SandboxedEnvironment

    expected = "expected ref('<model>') or source('<source>', '<table>')"
    if not isinstance(model, str):
        raise where.error(f"{expected}, got {type_name(model)}", "model")
    try:
        tree = SandboxedEnvironment().parse("{{ " + model + " }}")
    except TemplateSyntaxError as exc:
        raise where.error(f"cannot read {model!r} ({expected}): {exc}", "model") from None
    body = tree.body
    call = body[0].nodes[0] if len(body) == 1 and isinstance(body[0], nodes.Output) else None
    if (
        not isinstance(call, nodes.Call)
        or not isinstance(call.node, nodes.Name)
        or call.node.name not in ("ref", "source")
        or len(body[0].nodes) != 1  # type: ignore[attr-defined]
        or call.dyn_args is not None
        or call.dyn_kwargs is not None
        or not call.args
        or not all(isinstance(a, nodes.Const) and isinstance(a.value, str) for a in call.args)
        or (call.node.name == "source" and len(call.args) != 2)
    ):
        raise where.error(f"{model!r}: {expected}", "model")
    name = str(call.args[-1].value).strip()  # type: ignore[attr-defined]
    if not name:
        raise where.error(f"{model!r} names no model ({expected})", "model")
    return name


def _read_semantic_model(item: Any, where: Where, layer: SemanticLayer) -> None:
    from dbt_semantic_interfaces.implementations.semantic_model import PydanticSemanticModel
    from dbt_semantic_interfaces.parsing.schemas import semantic_model_validator

    if not isinstance(item, dict):
        raise where.error(f"a semantic model is a mapping, got {type_name(item)}")
    obj = copy.deepcopy(item)
    if not _config(obj):
        return
    if "model" in obj:
        table = _ref(obj.pop("model"), where)
        obj.setdefault("node_relation", {"alias": table, "schema_name": DEFAULT_SCHEMA})
    elif "node_relation" not in obj:
        raise where.error("a semantic model needs model: ref('<model>')")
    inherited = (
        (obj.get("config") or {}).get("meta") if isinstance(obj.get("config"), dict) else None
    )
    for key in ELEMENTS:
        elements = obj.get(key)
        if isinstance(elements, list):
            obj[key] = [
                e
                for e in (copy.deepcopy(x) for x in elements)
                if not isinstance(e, dict) or _config(e, inherited)
            ]
    _schema_errors(semantic_model_validator, obj, item, where)
    sm = _parse(PydanticSemanticModel, obj, where)
    layer.semantic_models.append(sm)
    layer.where.setdefault(("semantic_model", sm.name), where)
    for key, kind in ELEMENTS.items():
        for j, element in enumerate(item.get(key) or []):
            name = element.get("name") if isinstance(element, dict) else None
            if isinstance(name, str):
                layer.where.setdefault(
                    (kind, sm.name, name), Where(where.doc, (*where.path, key, j))
                )


def _read_metric(item: Any, where: Where, layer: SemanticLayer) -> None:
    from dbt_semantic_interfaces.implementations.metric import PydanticMetric
    from dbt_semantic_interfaces.parsing.schemas import metric_validator

    if not isinstance(item, dict):
        raise where.error(f"a metric is a mapping, got {type_name(item)}")
    obj = copy.deepcopy(item)
    if not _config(obj):
        return
    _metric_inputs(obj)
    _schema_errors(metric_validator, obj, item, where)
    metric = _parse(PydanticMetric, obj, where)
    layer.metrics.append(metric)
    layer.where.setdefault(("metric", metric.name), where)


def _metric_inputs(metric: dict[str, Any]) -> None:
    """A metric input written as a name (``numerator: orders``, ``metrics: [revenue]``) is
    ``{name: ...}``, as dbt's parser reads it, in place."""
    tp = metric.get("type_params")
    if not isinstance(tp, dict):
        return

    def named(value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    for key in ("numerator", "denominator"):
        if key in tp:
            tp[key] = named(tp[key])
    if isinstance(tp.get("metrics"), list):
        tp["metrics"] = [named(m) for m in tp["metrics"]]
    for params, keys in (
        ("cumulative_type_params", ("metric",)),
        ("conversion_type_params", ("base_metric", "conversion_metric")),
    ):
        inner = tp.get(params)
        if isinstance(inner, dict):
            for key in keys:
                if key in inner:
                    inner[key] = named(inner[key])


def _schema_errors(validator: Any, obj: dict[str, Any], item: dict[str, Any], where: Where) -> None:
    """DSI's JSON schema errors for one item, each at the line of the key it names."""
    found = []
    for e in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(e.absolute_path)
        if e.validator in ("anyOf", "oneOf") and e.context:
            # the branch that explains it: a missing key, else the deepest error
            best = next((c for c in e.context if c.validator == "required"), None)
            e = best or max(e.context, key=lambda c: len(c.absolute_path))
            path = [*path, *e.relative_path]
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = set((e.schema or {}).get("properties", {}))
            extra = sorted(k for k in e.instance if k not in known and not _dunder(k))
            if extra:
                path.append(extra[0])
        message = e.message
        if e.validator == "enum" and isinstance(e.instance, str):
            options = [str(o) for o in e.validator_value if str(o).islower()]
            message += did_you_mean(e.instance.lower(), options)
        found.append(where.error(message, *_yaml_path(item, path)))
    if found:
        raise InputErrors(found)


def _dunder(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


def _yaml_path(item: Any, path: Sequence[Any]) -> KeyPath:
    """The part of a path into the translated item that exists in the item as written (a
    ``node_relation`` or ``config.meta`` we wrote is reported at its nearest written key)."""
    out: list[str | int] = []
    node = item
    for part in path:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str):
            out.append(part)  # a missing or unknown key: its parent's line
            break
        else:
            break
        out.append(part)
    return tuple(out)


def _parse(cls: Any, obj: dict[str, Any], where: Where) -> Any:
    """DSI's pydantic object; its errors at the line of the key they name."""
    obj["metadata"] = {
        "repo_file_path": where.file,
        "file_slice": {
            "filename": where.file,
            "content": "",
            "start_line_number": where.line() or 0,
            "end_line_number": where.line() or 0,
        },
    }
    try:
        return cls.parse_obj(obj)
    except Exception as exc:  # pydantic (v1) errors, DSI's ParsingException and ValueError
        errors = getattr(exc, "errors", None)
        if callable(errors):
            found = [
                where.error(str(err.get("msg", exc)), *_yaml_path(obj, err.get("loc", ())))
                for err in errors()
            ]
            raise InputErrors(found) from None
        raise where.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


# ------------------------------------------------------------------------- the manifest


def _validate_manifest(layer: SemanticLayer, docs: list[YamlDoc]) -> list[InputError]:
    """DSI's transformations and semantic-manifest validation rules over the whole layer."""
    from dbt_semantic_interfaces.implementations.project_configuration import (
        PydanticProjectConfiguration,
    )
    from dbt_semantic_interfaces.implementations.semantic_manifest import (
        PydanticSemanticManifest,
    )
    from dbt_semantic_interfaces.transformations.add_input_metric_measures import (
        AddInputMetricMeasuresRule,
    )
    from dbt_semantic_interfaces.transformations.proxy_measure import CreateProxyMeasureRule
    from dbt_semantic_interfaces.validations.semantic_manifest_validator import (
        SemanticManifestValidator,
    )

    manifest = PydanticSemanticManifest(
        semantic_models=copy.deepcopy(layer.semantic_models),
        metrics=copy.deepcopy(layer.metrics),
        project_configuration=PydanticProjectConfiguration(),
    )
    first = docs[0] if docs else YamlDoc(None, "semantic layer")
    try:
        # what dbt's parser adds before validating: the metrics of measures with
        # create_metric: true, and every metric's input measures
        manifest = CreateProxyMeasureRule.transform_model(manifest)
        manifest = AddInputMetricMeasuresRule.transform_model(manifest)
    except Exception as exc:  # DSI raises on a metric input it cannot follow
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [first.error((), f"dbt-semantic-interfaces cannot build the manifest: {message}")]
    errors: list[InputError] = []
    rules: Sequence[Any] = SemanticManifestValidator.DEFAULT_RULES  # type: ignore[misc]
    for rule in rules:
        for issue in rule.validate_manifest(manifest):
            located = _locate(issue, layer, first)
            if issue.level.name == "ERROR":
                errors.append(located)
            else:
                layer.notes.append(f"{located} (dbt {issue.level.name.lower().replace('_', ' ')})")
    layer.notes = sorted(set(layer.notes))
    return errors


def _locate(issue: Any, layer: SemanticLayer, first: YamlDoc) -> InputError:
    """A DSI validation issue at the item its context names."""
    ctx = issue.context
    key: tuple[str, ...] | None = None
    if ctx is not None:
        element = getattr(ctx, "semantic_model_element", None)
        if element is not None:
            kind = ctx.element_type.value
            key = (kind, element.semantic_model_name, element.element_name)
            if key not in layer.where:
                key = ("semantic_model", element.semantic_model_name)
        elif getattr(ctx, "semantic_model", None) is not None:
            key = ("semantic_model", ctx.semantic_model.semantic_model_name)
        elif getattr(ctx, "metric", None) is not None:
            key = ("metric", ctx.metric.metric_name)
        elif getattr(ctx, "object_name", None) is not None:
            kind = "metric" if ctx.object_type == "metric" else "semantic_model"
            key = (kind, ctx.object_name)
    where = _find(layer, key) if key else None
    if where is not None:
        return where.error(issue.message)
    file_ctx = getattr(ctx, "file_context", ctx)
    file = getattr(file_ctx, "file_name", None) or first.file
    line = getattr(file_ctx, "line_number", None)
    return InputError(issue.message, file=file, line=line or None)


def _find(layer: SemanticLayer, key: tuple[str, ...]) -> Where | None:
    """``layer.where[key]``; DSI lower-cases names, so compare case-insensitively."""
    if key in layer.where:
        return layer.where[key]
    folded = tuple(k.lower() for k in key)
    return next((w for k, w in layer.where.items() if tuple(x.lower() for x in k) == folded), None)
