"""The reference six-layer stack: one request in, every layer's artifact out.

Layers run in order (manifest, grammar, validator, compiler, database, release). The validator
judges every request on its own (an application authorizer also sees requests that never went
through the model's grammar); SQL is produced only for a request the grammar accepted and the
validator allowed, with the validator's tenant scope and row budget. :class:`Knobs` say how each
layer produces its artifact: the canonical stack uses the defaults, a fault operator changes the
knobs of exactly one layer.

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> run = run_stack(load_domain("support_saas"), Request("acme_analyst",
...     parse_ir("ticket_count by region during last_month limit 100")))
>>> run.grammar_decision, run.validator["decision"], run.release
('accept', 'allow', 'release')
>>> sorted(run.digests())
['cost_estimate', 'ddl', 'grammar', 'manifest', 'release', 'request', 'sql', 'validator']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from policystrata.case import Case
from policystrata.facts import Const, Provenance
from policystrata.ir import SemanticQuery
from policystrata.model import Domain
from policystrata.stack.compiler import CompilerKnobs, compile_query
from policystrata.stack.database import DatabaseKnobs, ddl_in_force
from policystrata.stack.grammar import GrammarKnobs, generate_grammar, grammar_decision
from policystrata.stack.manifest import ManifestKnobs, build_manifest
from policystrata.stack.release import ReleaseKnobs, release_decision, release_record
from policystrata.stack.validator import ValidatorKnobs, authorize

#: Which artifact each layer produces (the keys of :meth:`StackRun.digests`).
LAYER_ARTIFACTS: dict[str, tuple[str, ...]] = {
    "manifest": ("manifest",),
    "grammar": ("grammar",),
    "validator": ("validator",),
    "compiler": ("sql", "cost_estimate"),
    "database": ("ddl",),
    "release": ("release",),
}


@dataclass(frozen=True)
class Request:
    """What the stack is asked: a principal, the model's semantic query, the compiler's style."""

    principal: str
    query: SemanticQuery
    style: str = "plain"


@dataclass(frozen=True)
class Knobs:
    manifest: ManifestKnobs = field(default_factory=ManifestKnobs)
    grammar: GrammarKnobs = field(default_factory=GrammarKnobs)
    validator: ValidatorKnobs = field(default_factory=ValidatorKnobs)
    compiler: CompilerKnobs = field(default_factory=CompilerKnobs)
    database: DatabaseKnobs = field(default_factory=DatabaseKnobs)
    release: ReleaseKnobs = field(default_factory=ReleaseKnobs)


class KnobConflict(ValueError):
    """Two faults set the same knob of a layer to different values (they cannot both apply)."""


def combine_knobs(*knobs: Knobs) -> Knobs:
    """Several faults at once: each layer's knobs take every value a fault set (a knob left at
    its default by one fault is the other's to set). Two faults setting one knob differently
    raise :class:`KnobConflict`. Works for any knob of any layer (no list of faults here).

    >>> a = Knobs(compiler=CompilerKnobs(drop_distinct=True))
    >>> b = Knobs(release=ReleaseKnobs(ignore_authorization=True))
    >>> both = combine_knobs(a, b)
    >>> both.compiler.drop_distinct, both.release.ignore_authorization, combine_knobs() == Knobs()
    (True, True, True)
    >>> combine_knobs(a, Knobs(compiler=CompilerKnobs(drop_distinct=False))) == a
    True
    """
    out = Knobs()
    for k in knobs:
        for layer in fields(Knobs):
            mine, theirs = getattr(out, layer.name), getattr(k, layer.name)
            default = type(theirs)()
            changes = {}
            for f in fields(theirs):
                value = getattr(theirs, f.name)
                if value == getattr(default, f.name):
                    continue
                if getattr(mine, f.name) not in (getattr(default, f.name), value):
                    raise KnobConflict(f"{layer.name}.{f.name} is set to two different values")
                changes[f.name] = value
            if changes:
                out = replace(out, **{layer.name: replace(mine, **changes)})
    return out


@dataclass
class StackRun:
    """Every layer's artifact for one request."""

    manifest: dict[str, Any]
    grammar: str
    request_text: str
    grammar_decision: str
    validator: dict[str, Any]
    sql: str | None
    params: dict[str, Const]
    tenant_ids: tuple[str, ...] | None
    cost_estimate: int | None
    ddl: str
    ddl_is_schema: bool
    release: str
    release_record: dict[str, Any] = field(default_factory=dict)

    def artifacts(self) -> dict[str, Any]:
        """Each artifact by name, as the layers produced it (what :meth:`digests` hashes)."""
        return {
            "cost_estimate": self.cost_estimate,
            "ddl": self.ddl,
            "grammar": self.grammar,
            "manifest": self.manifest,
            "release": self.release
            if not self.release_record
            else [self.release, self.release_record],
            "request": self.request_text,
            "sql": {"sql": self.sql, "params": self.params, "tenants": self.tenant_ids},
            "validator": self.validator,
        }

    def digests(self) -> dict[str, str]:
        """sha256 (first 16 hex) of each artifact, by artifact name."""
        return {k: artifact_digest(v) for k, v in sorted(self.artifacts().items())}

    def to_case(
        self, case_id: str, principal: str, query: SemanticQuery, origin: Provenance | None
    ) -> Case:
        """The artifacts as the detector receives them (no fault, label or version)."""
        return Case(
            id=case_id,
            principal=principal,
            ir=query,
            sql=self.sql,
            tenant_ids=self.tenant_ids,
            params=dict(self.params),
            release_decision=self.release,
            release_cohort_threshold=self.release_record.get("min_cohort_size"),
            release_disclosures=tuple(self.release_record.get("disclosures", ())) or None,
            origin=origin,
            request_text=self.request_text,
            manifest=self.manifest,
            grammar=self.grammar,
            validator=self.validator,
            cost_estimate=self.cost_estimate,
            ddl=None if self.ddl_is_schema else self.ddl,
        )


def artifact_digest(value: Any) -> str:
    """sha256 (first 16 hex) of one artifact: of its text, or of its sorted JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_SCHEMA_TEXT: dict[str, str] = {}


def schema_text(domain: Domain) -> str:
    """The domain's schema.sql as written ("" for a domain without one: its database layer
    declares nothing, so database faults have nothing to rewrite)."""
    if not domain.schema_known:
        return ""
    key = str(domain.sources.get("schema", domain.path / "schema.sql"))
    text = _SCHEMA_TEXT.get(key)
    if text is None:
        text = (domain.path / "schema.sql").read_text(encoding="utf-8")
        _SCHEMA_TEXT[key] = text
    return text


def run_stack(domain: Domain, request: Request, knobs: Knobs | None = None) -> StackRun:
    """Run the six layers for one request."""
    knobs = knobs or Knobs()
    manifest = build_manifest(domain, request.principal, knobs.manifest)
    grammar = generate_grammar(manifest, knobs.grammar)
    request_text = request.query.to_text()
    g_decision = grammar_decision(grammar, request_text)
    verdict = authorize(domain, request.principal, request.query, knobs.validator)
    sql: str | None = None
    params: dict[str, Const] = {}
    tenants: tuple[str, ...] | None = None
    cost: int | None = None
    if g_decision == "accept" and verdict.decision == "allow":
        scope = [str(v) for o, v in verdict.obligations if o == "tenant_scope"]
        budget = next((int(v) for o, v in verdict.obligations if o == "row_budget"), None)
        compiled = compile_query(
            domain, scope, request.query, budget, knobs.compiler, style=request.style
        )
        sql, params, cost = compiled.sql, compiled.params, compiled.cost_estimate
        tenants = tuple(scope)
    schema = schema_text(domain)
    ddl = ddl_in_force(schema, knobs.database)
    release = release_decision(g_decision, verdict.decision, sql is not None, knobs.release)
    metric = domain.policy.resolve_metric(request.query.metric)
    sampled = metric is not None and domain.policy.metrics[metric].sample is not None
    record = release_record(
        domain, release == "release" and sql is not None, sampled, knobs.release
    )
    return StackRun(
        manifest=manifest,
        grammar=grammar,
        request_text=request_text,
        grammar_decision=g_decision,
        validator=verdict.artifact(),
        sql=sql,
        params=params,
        tenant_ids=tenants,
        cost_estimate=cost,
        ddl=ddl,
        ddl_is_schema=ddl == schema,
        release=release,
        release_record=record,
    )


def changed_artifacts(a: StackRun, b: StackRun) -> list[str]:
    """Names of the artifacts that differ between two runs of the same request."""
    da, db = a.digests(), b.digests()
    return [k for k in da if da[k] != db[k]]
