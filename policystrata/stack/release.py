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


@dataclass(frozen=True)
class ReleaseKnobs:
    """How a (possibly faulty) release layer deviates from the canonical one."""

    ignore_authorization: bool = False  # releases whatever was produced, denied or not


def release_decision(
    grammar: str, validator: str, produced: bool, knobs: ReleaseKnobs | None = None
) -> str:
    knobs = knobs or ReleaseKnobs()
    if knobs.ignore_authorization and produced:
        return "release"
    if grammar == "accept" and validator == "allow" and produced:
        return "release"
    return "withhold"
