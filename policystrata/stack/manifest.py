"""Manifest layer: the capability JSON a model is shown for one principal.

The canonical manifest exposes exactly what the principal's role may use: metrics the role AND
the metric admit, by canonical name only (retired aliases are not exposed: each metric's
``aliases`` list is empty), dimensions the role AND the dimension admit, and the role's time
ranges. Lists are sorted so the JSON is byte-stable.

>>> from policystrata.model import load_domain
>>> m = build_manifest(load_domain("support_saas"), "acme_analyst")
>>> [x["name"] for x in m["metrics"]][:2], m["dimensions"]
(['average_resolution_hours', 'escalated_tickets'], ['month', 'plan', 'region', 'severity'])
>>> m["metrics"][0]["aliases"]
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policystrata.model import Domain


@dataclass(frozen=True)
class ManifestKnobs:
    """How a (possibly faulty) manifest layer deviates from the canonical one."""

    omit_metric: str | None = None  # underclaim: leave out an allowed metric
    stale_alias: tuple[str, str] | None = None  # (retired alias, its metric) still offered


def role_metrics(domain: Domain, role: str) -> list[str]:
    """Metrics the role lists AND that list the role (or admit every role)."""
    pol = domain.policy
    r = pol.roles[role]
    out = []
    for name in r.allowed_metrics:
        m = pol.metrics.get(name)
        if m is not None and (m.allowed_roles is None or role in m.allowed_roles):
            out.append(name)
    return sorted(out)


def role_dimensions(domain: Domain, role: str) -> list[str]:
    """Dimensions the role lists AND that list the role (sensitive ones included)."""
    pol = domain.policy
    out = []
    for name in pol.roles[role].allowed_dimensions:
        d = pol.dimensions.get(name)
        if d is not None and (d.allowed_roles is None or role in d.allowed_roles):
            out.append(name)
    return sorted(out)


def build_manifest(
    domain: Domain, principal: str, knobs: ManifestKnobs | None = None
) -> dict[str, Any]:
    """The capability JSON for ``principal`` (an unknown principal gets an empty manifest)."""
    knobs = knobs or ManifestKnobs()
    pol = domain.policy
    p = pol.principals.get(principal)
    if p is None or p.role not in pol.roles:
        return {"principal": principal, "metrics": [], "dimensions": [], "time_ranges": []}
    metrics = []
    allowed = role_metrics(domain, p.role)
    for name in allowed:
        if name == knobs.omit_metric:
            continue
        aliases: list[str] = []
        if knobs.stale_alias is not None and knobs.stale_alias[1] == name:
            aliases = [knobs.stale_alias[0]]
        metrics.append({"name": name, "aliases": aliases})
    if knobs.stale_alias is not None and knobs.stale_alias[1] not in allowed:
        # a retired alias the manifest still offers, of a metric the role may not use
        metrics.append({"name": knobs.stale_alias[0], "aliases": []})
        metrics.sort(key=lambda m: str(m["name"]))
    dims = role_dimensions(domain, p.role)
    labels = domain.time_range_labels()
    ranges = sorted(t for t in pol.roles[p.role].allowed_time_ranges if t in labels)
    return {
        "principal": principal,
        "role": p.role,
        "metrics": metrics,
        "dimensions": dims,
        "time_ranges": ranges,
    }


def manifest_words(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Category -> words the manifest exposes (metric names and aliases, dimensions, ranges)."""
    metrics: list[str] = []
    for m in manifest.get("metrics", []):
        metrics.append(m["name"])
        metrics.extend(m.get("aliases", []))
    return {
        "metric": sorted(set(metrics)),
        "dimension": sorted(set(manifest.get("dimensions", []))),
        "time_range": sorted(set(manifest.get("time_ranges", []))),
    }
