"""Honest accounting of a run, accumulated case by case (memory bounded by operators and
classes, not by case count, except the short lists of equivalents, survivors and false
positives, which should be empty or small).

Statuses: ``killed`` (non-clean witness on a faulted case), ``survived`` (clean on a faulted
case), ``equivalent`` (the fault changed no artifact: never a kill), ``stillborn`` (the case
cannot be built: unknown principal/operator, no mutation point, no semantic query), ``invalid``
(the reference stack could not build the case on this domain, e.g. no join path: the reason is
kept, the run goes on), ``clean``
(fault-free case, no witness) and ``false_positive`` (fault-free case with a witness).

>>> acc = Accumulator()
>>> acc.add({"task": "t1", "mutation": "x", "status": "killed", "expected": {"surface": "compiler",
...     "class": "lowering_violation"}, "localized": "compiler", "classes": ["lowering_violation"]})
>>> acc.summary()["counts"]["kill_rate"]
1.0
"""

from __future__ import annotations

from typing import Any

STATUSES = (
    "killed",
    "survived",
    "equivalent",
    "stillborn",
    "invalid",
    "clean",
    "false_positive",
    "error",
)


class Accumulator:
    def __init__(self) -> None:
        self.status = dict.fromkeys(STATUSES, 0)
        self.cases = 0
        self.keys: set[bytes] = set()
        self.per_operator: dict[str, dict[str, int]] = {}
        self.witness_classes: dict[str, int] = {}
        self.case_classes: dict[str, int] = {}
        self.localized = {"scored": 0, "correct": 0}
        self.classified = {"scored": 0, "correct": 0}
        self.contained = {"scored": 0, "correct": 0}
        self.equivalents: list[dict[str, Any]] = []
        self.survivors: list[dict[str, Any]] = []
        self.false_positives: list[dict[str, Any]] = []
        self.stillborn: dict[str, int] = {}
        self.stillborn_examples: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.minimization: list[dict[str, Any]] = []
        self.contained_kills = 0  # kills whose first witness a later layer contained
        self.cost_estimated = 0  # sum of the cases' estimated (policy) costs

    def add(self, rec: dict[str, Any], key: bytes | None = None) -> None:
        self.cases += 1
        if key is not None:
            self.keys.add(key)
        status = rec["status"]
        self.status[status] += 1
        mutation = rec.get("mutation", "none")
        op = self.per_operator.setdefault(mutation, dict.fromkeys(("cases", *STATUSES), 0))
        op["cases"] += 1
        op[status] += 1
        for c in rec.get("classes", []):
            self.witness_classes[c] = self.witness_classes.get(c, 0) + 1
        if rec.get("classes"):
            primary = rec["classes"][0]
            self.case_classes[primary] = self.case_classes.get(primary, 0) + 1
        brief = {"task": rec["task"], "mutation": mutation}
        self.cost_estimated += (rec.get("cost") or {}).get("estimated") or 0
        if status == "killed" and rec.get("containment"):
            self.contained_kills += 1
        if status == "killed":
            exp = rec.get("expected") or {}
            if exp.get("surface"):
                self.localized["scored"] += 1
                ok = rec.get("localized") == exp["surface"]
                self.localized["correct"] += ok
                op["localized_ok"] = op.get("localized_ok", 0) + ok
            if exp.get("class"):
                self.classified["scored"] += 1
                ok = exp["class"] in rec.get("classes", [])
                self.classified["correct"] += ok
                op["class_ok"] = op.get("class_ok", 0) + ok
            if exp.get("containment"):
                self.contained["scored"] += 1
                self.contained["correct"] += rec.get("containment") == exp["containment"]
        elif status == "equivalent":
            self.equivalents.append({**brief, "reason": rec.get("reason", "")})
        elif status == "survived":
            self.survivors.append({**brief, "ir": rec.get("ir")})
        elif status == "false_positive":
            self.false_positives.append(
                {**brief, "ir": rec.get("ir"), "checks": rec.get("checks", [])}
            )
        elif status == "stillborn":
            reason = rec.get("reason", "")
            self.stillborn[reason] = self.stillborn.get(reason, 0) + 1
            if len(self.stillborn_examples) < 20:
                self.stillborn_examples.append({**brief, "reason": reason})
        elif status in ("error", "invalid"):
            self.errors.append({**brief, "status": status, "reason": rec.get("reason", "")})
        if rec.get("minimized"):
            self.minimization.append({"task": rec["task"], **rec["minimized"]})

    def summary(self) -> dict[str, Any]:
        s = self.status
        mutants = s["killed"] + s["survived"]
        controls = s["clean"] + s["false_positive"]

        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        reductions = [m["fact_reduction"] for m in self.minimization if "fact_reduction" in m]
        return {
            "counts": {
                "cases": self.cases,
                "distinct_cases": len(self.keys),
                **s,
                "non_equivalent_mutants": mutants,
                "controls": controls,
                "kill_rate": rate(s["killed"], mutants),
                "false_positive_rate": rate(s["false_positive"], controls),
                "localization_accuracy": rate(self.localized["correct"], self.localized["scored"]),
                "class_accuracy": rate(self.classified["correct"], self.classified["scored"]),
                "containment_accuracy": rate(self.contained["correct"], self.contained["scored"]),
            },
            "witness_classes": dict(sorted(self.witness_classes.items())),
            "case_classes": dict(sorted(self.case_classes.items())),
            "per_operator": {k: self.per_operator[k] for k in sorted(self.per_operator)},
            "equivalents": self.equivalents,
            "survivors": self.survivors,
            "false_positives": self.false_positives,
            "stillborn": dict(sorted(self.stillborn.items())),
            "stillborn_examples": self.stillborn_examples,
            "errors": self.errors,
            "minimization": {
                "witnesses": len(self.minimization),
                "mean_fact_reduction": round(sum(reductions) / len(reductions), 4)
                if reductions
                else None,
                "per_witness": self.minimization,
            },
        }
