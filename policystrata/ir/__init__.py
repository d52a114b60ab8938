"""Semantic IR: text (``grammars/semantic_ir.lark``) and dict forms of :class:`SemanticQuery`.

>>> parse_ir("ticket_count by region during last_month limit 100") == SemanticQuery.from_obj(
...     {"metric": "ticket_count", "dimensions": ["region"], "time_range": "last_month",
...      "limit": 100})
True
"""

from policystrata.ir.parse import ir_from_value, parse_ir
from policystrata.ir.query import Filter, SemanticQuery

__all__ = ["Filter", "SemanticQuery", "ir_from_value", "parse_ir"]
