"""The six layers of a data-agent stack, defined once.

In pipeline order: the **manifest** the model is shown, the **grammar** of intents, the semantic
**validator**, the SQL **compiler**, the **database** (row level security, grants) and the
**release** filter. A violation is localized to the first layer whose responsibility failed; a
later layer that blocked the effect contains it. The defence layers are the two whose job is
to stop what earlier layers let through.

The code and docs say *layer*; the published file formats say *surface* (``surfaces.yaml``,
``surface_versions``, ``localized_surface``, ``affected_surface``), and those keys stay.

>>> LAYERS[LAYER_RANK["compiler"] - 1], DEFENCE_LAYERS, MODES["database"]
('compiler', ('database', 'release'), 'database_containment')
"""

from __future__ import annotations

from typing import Literal, get_args

Layer = Literal["manifest", "grammar", "validator", "compiler", "database", "release"]
LAYERS: tuple[str, ...] = get_args(Layer)
#: 1-based position in the pipeline (the rules' ``layer_rank`` facts).
LAYER_RANK: dict[str, int] = {name: i for i, name in enumerate(LAYERS, start=1)}
#: Layers whose job is to contain upstream faults: their own faults are witnesses too.
DEFENCE_LAYERS: tuple[str, ...] = ("database", "release")

Mode = Literal[
    "capability_exposure",
    "intent_space",
    "semantic_validation",
    "sql_lowering",
    "database_containment",
    "output_release",
]
#: Each layer's mode (a surfaces.yaml contract's ``mode``; the default when none is given).
MODES: dict[str, str] = dict(zip(LAYERS, get_args(Mode), strict=True))
