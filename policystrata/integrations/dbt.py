"""The dbt Semantic Layer through the one check pipeline.

``strata check-integration dbt-semantic`` and the scan's dbt stage both build one
:class:`~policystrata.case.Case` whose artifact is the semantic layer (its files' texts), and call
:meth:`~policystrata.check.Checker.check`: the files are read with dbt-semantic-interfaces and
lowered to ``dbt_*`` facts by a pass of the pipeline, ``rules/dbt.dl`` compares them with the
policy, and each drift is a witness with a proof. This module only builds the case and collects
what the evaluation says was not compared; it decides nothing.

The files of a semantic layer are checked together, as dbt builds one semantic manifest from a
project: a metric may use a measure of a semantic model in another file, and a policy metric is
missing only when no file defines it.

>>> import pathlib, tempfile
>>> from policystrata.check import Checker
>>> from policystrata.scan.scaffold import TEMPLATES
>>> model = TEMPLATES / "postgres_dbt" / "dbt" / "semantic_models.yml"
>>> case = semantic_layer_case([(model, "semantic_models.yml")])
>>> checked = check_semantic_layer(Checker.open("support_saas"), case)
>>> checked.result.verdict, checked.unchecked
('clean', [])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from policystrata.case import Case, SourceText
from policystrata.facts import Provenance
from policystrata.model.yamlsrc import load_yaml_text, read_text_file

if TYPE_CHECKING:
    from policystrata.check import Checker
    from policystrata.witness import CaseResult, Witness

#: The case id of a semantic layer (the first argument of its facts).
CASE_ID = "semantic_layer"
YAML_SUFFIXES = (".yml", ".yaml")


@dataclass
class SemanticLayerCheck:
    """The check of a semantic layer: the case's result (its witnesses), what was not compared
    and why, and dbt-semantic-interfaces' warnings."""

    result: CaseResult
    unchecked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def semantic_layer_files(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Files and directories given on the command line -> (file, display name). A directory
    contributes every YAML file below it (hidden directories skipped, sorted) that defines
    ``semantic_models`` or ``metrics``: a dbt project's ``models/`` directory works as is."""
    from policystrata.lower.dbt.read import SECTIONS

    out: list[tuple[Path, str]] = []
    for path in paths:
        if not path.is_dir():
            out.append((path, str(path)))
            continue
        for file in sorted(path.rglob("*")):
            rel = file.relative_to(path)
            if file.suffix not in YAML_SUFFIXES or not file.is_file():
                continue
            if any(part.startswith(".") for part in rel.parts):
                continue
            name = str(path / rel)
            data = load_yaml_text(read_text_file(file, name), name).data
            if isinstance(data, dict) and any(key in data for key in SECTIONS):
                out.append((file, name))
    return out


def semantic_layer_case(files: Sequence[tuple[Path, str]]) -> Case:
    """The case whose artifact is the semantic layer made of ``files`` ((path, display name))."""
    texts = tuple(SourceText(name, read_text_file(path, name)) for path, name in files)
    origin = Provenance(texts[0].name) if texts else None
    return Case(id=CASE_ID, semantic_layer=texts, origin=origin)


def check_semantic_layer(checker: Checker, case: Case) -> SemanticLayerCheck:
    """Judge the semantic layer case with the checker (one evaluation); what dbt rejects raises
    :class:`~policystrata.errors.InputErrors` naming file and line."""
    from policystrata.lower.dbt import read_semantic_layer

    layer = read_semantic_layer(case.semantic_layer or ())
    facts = checker.artifact_facts(case)
    evaluated = checker.engine.evaluate(facts)
    result = checker.check(case, artifact_facts=facts, evaluated=evaluated)
    where = {str(f.args[1]): facts.provenance(f) for f in facts.by_pred("dbt_metric")}
    unchecked = []
    for _, name, part, reason in evaluated.atoms("dbt_unchecked"):
        at = next((str(p) for p in where.get(str(name), ()) if p.line), "")
        unchecked.append(
            f"{at + ': ' if at else ''}dbt metric {name}: {part} not compared: {reason}"
        )
    return SemanticLayerCheck(result=result, unchecked=unchecked, notes=list(layer.notes))


def finding_location(witness: Witness, files: Iterable[str]) -> tuple[str, int | None]:
    """Where a semantic layer witness points: the first fact of its proof (pre-order) that has a
    line in a file of the semantic layer or in policy.yaml (the rules put the fact to fix
    first). ``("policy.yaml", line)`` for a policy entry the semantic layer lacks."""
    names = set(files)
    for step in witness.proof.walk() if witness.proof is not None else ():
        if step.kind != "fact":
            continue
        for prov in step.provenance:
            if prov.line is not None and (prov.source in names or prov.source == "policy.yaml"):
                return prov.source, prov.line
    return (next(iter(sorted(names)), "semantic layer"), None)
