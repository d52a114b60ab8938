"""Stack artifacts -> facts: the manifest JSON, the generated grammar text and the validator's
decision (``rules/decl_case.dl``, ``rules/decl_stack.dl``). Detector side: this module reads
the artifacts exactly as a layer produced them and never imports the reference stack.

- manifest: ``{"metrics": [{"name", "aliases"}], "dimensions": [...], "time_ranges": [...]}``
  -> ``manifest_present``, ``manifest_metric`` (names and aliases), ``manifest_metric_alias``,
  ``manifest_dimension``, ``manifest_time_range``.
- grammar: Lark grammar text whose rules ``metric``, ``dimension`` and ``time_range`` list the
  admitted words as string literals -> ``grammar_present``, ``grammar_admits``; the grammar's
  decision on the request's IR text is re-derived by parsing it -> ``grammar_decision``.
- validator: ``{"decision": "allow"|"deny", "obligations": [{"obligation", "value"}]}`` ->
  ``validator_decision``, ``validator_obligation``.
- cost estimate -> ``compiler_cost_estimate``.

>>> m = {"metrics": [{"name": "ticket_count", "aliases": ["ticket_volume"]}],
...      "dimensions": ["region"], "time_ranges": ["last_month"]}
>>> print(lower_manifest("c1", m).to_lines(), end="")
manifest_dimension("c1", "region")
manifest_metric("c1", "ticket_count")
manifest_metric("c1", "ticket_volume")
manifest_metric_alias("c1", "ticket_volume", "ticket_count")
manifest_present("c1")
manifest_time_range("c1", "last_month")
>>> g = ('start: metric ("by" dimension)?\\nmetric: "ticket_count"\\n'
...      'dimension: "region"\\n%ignore " "\\n')
>>> print(lower_grammar("c1", g, "ticket_count by region").to_lines(), end="")
grammar_admits("c1", "dimension", "region")
grammar_admits("c1", "metric", "ticket_count")
grammar_decision("c1", "accept")
grammar_present("c1")
>>> print(lower_validator("c1", {"decision": "allow",
...     "obligations": [{"obligation": "row_budget", "value": 1000}]}).to_lines(), end="")
validator_decision("c1", "allow")
validator_obligation("c1", "row_budget", 1000)
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from lark import Lark
from lark.lexer import PatternStr

from policystrata.facts import FactSet, Provenance
from policystrata.lalr import lalr_parser, parse_error

#: Grammar rules whose string literals are the words the grammar admits, by category.
GRAMMAR_CATEGORIES = ("metric", "dimension", "time_range")


def lower_manifest(
    case_id: str, manifest: dict[str, Any], prov: Provenance | None = None
) -> FactSet:
    """The capability JSON a model was shown."""
    p = prov or Provenance("manifest")
    fs = FactSet()
    fs.add("manifest_present", case_id, prov=p)
    for item in manifest.get("metrics") or []:
        if isinstance(item, str):
            fs.add("manifest_metric", case_id, item, prov=p)
            continue
        name = str(item.get("name", ""))
        if name:
            fs.add("manifest_metric", case_id, name, prov=_at(p, f"metric {name}"))
        for alias in item.get("aliases") or []:
            fs.add("manifest_metric", case_id, str(alias), prov=_at(p, f"alias {alias} of {name}"))
            if name:
                fs.add(
                    "manifest_metric_alias",
                    case_id,
                    str(alias),
                    name,
                    prov=_at(p, f"alias {alias} of {name}"),
                )
    for dim in manifest.get("dimensions") or []:
        fs.add("manifest_dimension", case_id, str(dim), prov=_at(p, f"dimension {dim}"))
    for label in manifest.get("time_ranges") or []:
        fs.add("manifest_time_range", case_id, str(label), prov=_at(p, f"time range {label}"))
    return fs


def _at(p: Provenance, note: str) -> Provenance:
    return Provenance(p.source, line=p.line, note=note)


@dataclass(frozen=True)
class _Grammar:
    parser: Lark | None
    words: tuple[tuple[str, str, int], ...]  # (category, word, line)
    error: str | None = None


_GRAMMARS: OrderedDict[str, _Grammar] = OrderedDict()


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] == '"':
        return word[1:-1].replace('""', '"')
    return word


def _load_grammar(text: str) -> _Grammar:
    cached = _GRAMMARS.get(text)
    if cached is not None:
        _GRAMMARS.move_to_end(text)
        return cached
    parser, exc = lalr_parser(text)  # compiled once per text (also for the stack)
    if parser is None:
        result = _Grammar(None, (), str(exc).splitlines()[0] if str(exc) else "invalid grammar")
    else:
        terminals = {t.name: t for t in parser.terminals}
        words: list[tuple[str, str, int]] = []
        lines = _rule_lines(text)
        for rule in parser.rules:
            cat = rule.origin.name
            if cat not in GRAMMAR_CATEGORIES or len(rule.expansion) != 1:
                continue
            term = terminals.get(rule.expansion[0].name)
            if term is None or not isinstance(term.pattern, PatternStr):
                continue
            word = _unquote(term.pattern.value)
            if word and "\u0000" not in word:
                words.append((str(cat), word, lines.get((str(cat), word), 0)))
        result = _Grammar(parser, tuple(sorted(set(words))))
    _GRAMMARS[text] = result
    if len(_GRAMMARS) > 256:
        _GRAMMARS.popitem(last=False)
    return result


def _rule_lines(text: str) -> dict[tuple[str, str], int]:
    """(category, word) -> 1-based line of the literal in the grammar text (for provenance)."""
    out: dict[tuple[str, str], int] = {}
    current = None
    for i, line in enumerate(text.splitlines(), start=1):
        head = line.split(":", 1)[0].strip()
        if ":" in line and head.isidentifier():
            current = head
        if current in GRAMMAR_CATEGORIES:
            for chunk in line.split('"')[1::2]:
                try:
                    word = _unquote(json.loads(f'"{chunk}"'))
                except ValueError:
                    continue
                out.setdefault((current, word), i)
    return out


def lower_grammar(
    case_id: str, grammar: str, request_text: str | None, prov: Provenance | None = None
) -> FactSet:
    """The generated grammar: what it admits, and its decision on the request's IR text.

    A grammar that does not load admits nothing and rejects every request.
    """
    src = (prov.source if prov else None) or "grammar"
    fs = FactSet()
    g = _load_grammar(grammar)
    fs.add("grammar_present", case_id, prov=Provenance(src, note=g.error))
    for cat, word, line in g.words:
        fs.add(
            "grammar_admits",
            case_id,
            cat,
            word,
            prov=Provenance(src, line=line or None, snippet=f'{cat}: "{word}"'),
        )
    if request_text is not None:
        decision = "reject"
        reason = g.error
        if g.parser is not None:
            reason = parse_error(grammar, request_text)
            decision = "accept" if reason is None else "reject"
        fs.add(
            "grammar_decision",
            case_id,
            decision,
            prov=Provenance(src, snippet=request_text, note=reason),
        )
    return fs


def lower_validator(
    case_id: str, validator: dict[str, Any], prov: Provenance | None = None
) -> FactSet:
    """The validator's decision and the obligations it emitted."""
    p = prov or Provenance("validator")
    fs = FactSet()
    decision = validator.get("decision")
    if isinstance(decision, str):
        fs.add("validator_decision", case_id, decision, prov=p)
    for item in validator.get("obligations") or []:
        if isinstance(item, dict):
            name, value = item.get("obligation"), item.get("value")
        else:
            name, value = item[0], item[1]
        if isinstance(name, str) and isinstance(value, str | int | float | bool):
            fs.add(
                "validator_obligation",
                case_id,
                name,
                value,
                prov=Provenance(p.source, note=f"{name} {value}"),
            )
    return fs


def lower_cost_estimate(case_id: str, cost: int, prov: Provenance | None = None) -> FactSet:
    """The compiler's cost estimate."""
    fs = FactSet()
    fs.add("compiler_cost_estimate", case_id, int(cost), prov=prov or Provenance("compiler"))
    return fs


__all__ = [
    "GRAMMAR_CATEGORIES",
    "lower_cost_estimate",
    "lower_grammar",
    "lower_manifest",
    "lower_validator",
]
