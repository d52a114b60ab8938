"""Grammar layer: a Lark grammar generated from the manifest; parsing the request's IR text with
it is the grammar layer's decision.

The grammar has the shape of the semantic IR (``grammars/semantic_ir.lark``) but its metric,
dimension and time range positions admit only the manifest's words, as string literals of the
rules ``metric``, ``dimension`` and ``time_range``.

>>> from policystrata.model import load_domain
>>> from policystrata.stack.manifest import build_manifest
>>> g = generate_grammar(build_manifest(load_domain("support_saas"), "acme_analyst"))
>>> grammar_decision(g, "ticket_count by region during last_month limit 100")
'accept'
>>> grammar_decision(g, "ticket_count by customer_email during last_month limit 100")
'reject'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from policystrata.ir.query import render_name
from policystrata.lalr import lalr_parser, parse_error
from policystrata.stack.manifest import manifest_words

GRAINS = ("day", "week", "month", "quarter", "year")
NEVER = "\u0000"  # a literal that never occurs in IR text: an empty category admits nothing

_SKELETON = """\
start: metric clause*
?clause: by_clause | during_clause | grain_clause | where_clause | limit_clause
by_clause: _BY dimension ("," dimension)*
during_clause: _DURING time_range
grain_clause: _GRAIN grain
where_clause: _WHERE condition (_AND condition)*
limit_clause: _LIMIT INT
condition: dimension COMP_OP value
         | dimension _IN "(" value ("," value)* ")"
?value: STRING | NUMBER | TRUE | FALSE

_BY.2: /by\\b/i
_DURING.2: /during\\b/i
_GRAIN.2: /grain\\b/i
_WHERE.2: /where\\b/i
_LIMIT.2: /limit\\b/i
_AND.2: /and\\b/i
_IN.2: /in\\b/i
TRUE.2: /true\\b/i
FALSE.2: /false\\b/i
COMP_OP: "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
STRING: /'(?:[^']|'')*'/
NUMBER: /-?(?:\\d+\\.\\d*|\\.\\d+|\\d+)(?:[eE][-+]?\\d+)?/
INT: /\\d+/
%import common.WS
%ignore WS
"""


@dataclass(frozen=True)
class GrammarKnobs:
    """How a (possibly faulty) grammar layer deviates from the canonical one."""

    extra_dimensions: tuple[str, ...] = ()  # words admitted although the manifest lacks them


def _alternatives(words: list[str]) -> str:
    if not words:
        return json.dumps(NEVER)
    return "\n    | ".join(json.dumps(render_name(w)) for w in words)


def generate_grammar(manifest: dict[str, Any], knobs: GrammarKnobs | None = None) -> str:
    """Lark grammar text admitting exactly the manifest's words (plus a fault's extras)."""
    knobs = knobs or GrammarKnobs()
    words = manifest_words(manifest)
    dims = sorted({*words["dimension"], *knobs.extra_dimensions})
    header = f"// generated from the manifest of {manifest.get('principal', '?')}\n"
    return (
        header
        + _SKELETON
        + f"metric: {_alternatives(words['metric'])}\n"
        + f"dimension: {_alternatives(dims)}\n"
        + f"time_range: {_alternatives(words['time_range'])}\n"
        + f"grain: {_alternatives(list(GRAINS))}\n"
    )


def grammar_decision(grammar: str, request_text: str) -> str:
    """``accept`` when the grammar parses the request's IR text, else ``reject`` (a grammar that
    does not load rejects everything). Parser and decision are shared with the detector's
    grammar lowering (``policystrata.lalr``)."""
    if lalr_parser(grammar)[0] is None:
        return "reject"
    return "accept" if parse_error(grammar, request_text) is None else "reject"
