"""Engine errors: rule-file problems (with rule id and file:line), timeouts, bad proofs.

>>> str(RuleError("unsafe variable X", file="rules/x.dl", line=12, rule_id="compiler.foo"))
'rules/x.dl:12: rule compiler.foo: unsafe variable X'
"""

from __future__ import annotations

from collections.abc import Iterable

from policystrata.errors import InputError, InputErrors, StrataError


class RuleError(InputError):
    """One problem in a rule file; renders as ``file:line: rule <id>: message``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        rule_id: str | None = None,
    ) -> None:
        self.rule_id = rule_id
        super().__init__(
            message, file=file, line=line, column=None, key=f"rule {rule_id}" if rule_id else None
        )
        self.column = column


class RuleErrors(InputErrors):
    """All problems found while loading a program (parse errors or static-check errors)."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        super().__init__(errors)


class EvaluationTimeout(StrataError):
    """An evaluation exceeded the engine's timeout (the case's facts were retracted)."""


class ProofError(StrataError):
    """A proof does not check against the program and the facts."""
