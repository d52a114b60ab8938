"""Pydantic models of surfaces.yaml (FORMATS.md).

>>> s = Surfaces.model_validate({"versions": {"compiler": "v7"},
...     "contracts": {"compiler": {"mode": "sql_lowering"}}})
>>> s.contracts["compiler"].mode, SURFACE_RANK["release"]
('sql_lowering', 6)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from policystrata.model.policy import Strict

SurfaceName = Literal["manifest", "grammar", "validator", "compiler", "database", "release"]
SURFACES: tuple[str, ...] = ("manifest", "grammar", "validator", "compiler", "database", "release")
SURFACE_RANK: dict[str, int] = {s: i for i, s in enumerate(SURFACES, start=1)}
Mode = Literal[
    "capability_exposure",
    "intent_space",
    "semantic_validation",
    "sql_lowering",
    "database_containment",
    "output_release",
]
DEFAULT_MODE: dict[str, str] = {
    "manifest": "capability_exposure",
    "grammar": "intent_space",
    "validator": "semantic_validation",
    "compiler": "sql_lowering",
    "database": "database_containment",
    "release": "output_release",
}


def _versions_to_str(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in value.items()
        }
    return value


class Contract(Strict):
    mode: Mode
    responsibilities: list[str] = Field(default_factory=list)
    accepts_obligations: list[str] = Field(default_factory=list)
    emits_obligations: list[str] = Field(default_factory=list)


class Surfaces(Strict):
    versions: dict[SurfaceName, str] = Field(default_factory=dict)
    contracts: dict[SurfaceName, Contract] = Field(default_factory=dict)
    transition_obligations: list[str] = Field(default_factory=list)

    @field_validator("versions", mode="before")
    @classmethod
    def _versions_as_str(cls, v: Any) -> Any:
        return _versions_to_str(v)
