"""Release layer: releases the result or withholds it.

The canonical release filter releases only a result the pipeline produced for an accepted and
authorized request: the grammar accepted it, the validator allowed it and SQL was produced.

>>> release_decision("accept", "allow", True)
'release'
>>> release_decision("reject", "allow", True)
'withhold'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReleaseKnobs:
    """How a (possibly faulty) release layer deviates from the canonical one."""

    ignore_authorization: bool = False  # releases whatever was produced, denied or not
    min_cohort: int | None = None  # suppresses groups below this cohort instead of the policy's
    hide_sampling: bool = False  # releases sampled results without the sampling disclosure


def release_record(
    domain: Any, released: bool, sampled: bool, knobs: ReleaseKnobs | None = None
) -> dict[str, Any]:
    """What the release layer enforced on a released result besides its decision, for a domain
    with a ``release:`` policy: the minimum cohort size of the groups it let through (groups
    below it are suppressed) and the disclosures it attached (``sampling`` for a result of a
    sampled query, where the policy requires it). Empty for a withheld result or a domain
    without release thresholds.

    >>> from policystrata.model import load_domain
    >>> release_record(load_domain("analytics_clickhouse"), True, True)
    {'min_cohort_size': 10, 'disclosures': ['sampling']}
    >>> release_record(load_domain("analytics_clickhouse"), True, False, ReleaseKnobs(min_cohort=1))
    {'min_cohort_size': 1, 'disclosures': []}
    """
    knobs = knobs or ReleaseKnobs()
    rel = domain.policy.release
    if rel is None or not released:
        return {}
    k = knobs.min_cohort if knobs.min_cohort is not None else rel.min_cohort_size
    disclosures = (
        ["sampling"] if sampled and rel.sampling_disclosure and not knobs.hide_sampling else []
    )
    return {"min_cohort_size": k, "disclosures": disclosures}


def release_decision(
    grammar: str, validator: str, produced: bool, knobs: ReleaseKnobs | None = None
) -> str:
    knobs = knobs or ReleaseKnobs()
    if knobs.ignore_authorization and produced:
        return "release"
    if grammar == "accept" and validator == "allow" and produced:
        return "release"
    return "withhold"
