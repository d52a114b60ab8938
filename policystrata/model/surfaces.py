"""Pydantic models of surfaces.yaml (FORMATS.md).

>>> s = Surfaces.model_validate({"versions": {"compiler": "v7"},
...     "contracts": {"compiler": {"mode": "sql_lowering"}}})
>>> s.contracts["compiler"].mode
'sql_lowering'
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from policystrata.layers import Layer, Mode
from policystrata.model.policy import Strict


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
    versions: dict[Layer, str] = Field(default_factory=dict)
    contracts: dict[Layer, Contract] = Field(default_factory=dict)
    transition_obligations: list[str] = Field(default_factory=list)

    @field_validator("versions", mode="before")
    @classmethod
    def _versions_as_str(cls, v: Any) -> Any:
        return _versions_to_str(v)
