"""A benchmark case: what to ask the stack, which fault to inject, and the labels to score with.

Only :attr:`BenchCase.principal`, :attr:`BenchCase.query` and :attr:`BenchCase.style` drive the
stack; :attr:`mutation` picks the fault operator; the ``expected_*`` labels and
``surface_versions`` are compared only after detection and never reach the detector.

>>> from policystrata.ir import parse_ir
>>> c = BenchCase(0, "t1", "acme_analyst", parse_ir("ticket_count limit 10"))
>>> c.key()
('none', 'acme_analyst', 'ticket_count limit 10', 'plain')
>>> style_from_versions({"compiler": "v7-cte"})
'cte'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policystrata.ir import SemanticQuery
from policystrata.stack.compiler import STYLES


@dataclass(frozen=True)
class BenchCase:
    index: int  # position in the suite's stream (stable across partitions)
    task_id: str
    principal: str
    query: SemanticQuery | None
    mutation: str = "none"
    style: str = "plain"
    expected_class: str | None = None
    expected_surface: str | None = None
    expected_containment: str | None = None
    surface_versions: dict[str, str] = field(default_factory=dict)
    source: str = "suite"  # suite file name (never an absolute path)
    line: int | None = None
    invalid: str | None = None  # why the case cannot be built (stillborn)
    request: str = ""  # the natural-language request, as the suite wrote it (recorded only)
    policy_version: str | None = None  # the suite's / task's policy_version (recorded only)

    def key(self) -> tuple[str, str, str, str]:
        """Identity for de-duplication: fault, principal, IR text and compiler style."""
        ir = self.query.to_text() if self.query is not None else ""
        return (self.mutation, self.principal, ir, self.style)

    @property
    def is_control(self) -> bool:
        return self.mutation in ("none", "")


def style_from_versions(versions: dict[str, str]) -> str:
    """The reference compiler's style from its version string (``v7-cte`` -> ``cte``): different
    compiler versions lower the same IR to different, equally legitimate SQL."""
    version = versions.get("compiler", "")
    suffix = version.rsplit("-", 1)[-1] if "-" in version else ""
    return suffix if suffix in STYLES else "plain"
