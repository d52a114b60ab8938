"""One LALR parser per grammar text, for the grammars a stack generates from its manifests.

Building a Lark LALR parser costs tens of milliseconds; the reference stack's grammar layer and
the detector's grammar lowering each need one for the same generated text. Both ask here, so a
text is compiled once per process (bounded memo).

>>> parser, error = lalr_parser('start: "a"')
>>> parser.parse("a").data, error
(Token('RULE', 'start'), None)
>>> lalr_parser("start: undefined_rule")[0] is None
True
>>> parse_error('start: "a"', "a"), parse_error('start: "a"', "b").split(",")[0]
(None, "No terminal matches 'b' in the current parser context")
"""

from __future__ import annotations

import sys
from functools import lru_cache

from lark import Lark
from lark.exceptions import LarkError


@lru_cache(maxsize=256)
def lalr_parser(text: str) -> tuple[Lark | None, LarkError | None]:
    """``(parser, None)`` for a grammar that loads, else ``(None, the error)``."""
    try:
        return Lark(text, parser="lalr"), None
    except LarkError as exc:
        return None, exc


def parse_error(text: str, request: str) -> str | None:
    """None when the grammar ``text`` (which must load) parses ``request``, else the first line
    of why not. Remembered by both texts: the stack's grammar layer and the detector's grammar
    lowering ask it of the same generated grammar and IR text, and minimization asks again.
    The grammar text is interned first: a stack generates an equal text again for each request
    of a principal, and the memo's keys would otherwise hold each copy (~2 KB apiece)."""
    return _parse_error(sys.intern(text), request)


@lru_cache(maxsize=4096)
def _parse_error(text: str, request: str) -> str | None:
    parser, exc = lalr_parser(text)
    if parser is None:
        raise ValueError(f"the grammar does not load: {exc}")
    try:
        parser.parse(request)
    except LarkError as err:
        return str(err).splitlines()[0] if str(err) else "does not parse"
    return None
