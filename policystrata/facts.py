"""Facts: the one currency between lowering passes, the rule engine and the witnesses.

A fact is a predicate name and a tuple of typed constants. Constants are ``str``, ``int``,
``float`` or ``bool`` and stay distinct by type: ``1``, ``1.0``, ``True`` and ``"1"`` are four
different constants (Python's own ``==`` would merge the first three, so identity goes through
:func:`const_key`).

Every fact may carry provenance (where it came from: ``policy.yaml:23``, a SQL span, a trace
line). Provenance is not part of a fact's identity.

>>> fs = FactSet()
>>> _ = fs.add("principal_tenant", "acme_analyst", "acme", prov=Provenance("policy.yaml", line=4))
>>> _ = fs.add("role_max_rows", "analyst", 1000)
>>> sorted(f.render() for f in fs)
['principal_tenant("acme_analyst", "acme")', 'role_max_rows("analyst", 1000)']
>>> str(fs.provenance(Fact("principal_tenant", ("acme_analyst", "acme")))[0])
'policy.yaml:4'
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

Const = str | int | float | bool

_TYPE_TAG = {bool: "b", int: "i", float: "f", str: "s"}


def const_type(value: Const) -> str:
    """Return the type tag of a constant: ``s`` (string), ``i`` (int), ``f`` (float), ``b`` (bool).

    >>> [const_type(v) for v in ("1", 1, 1.0, True)]
    ['s', 'i', 'f', 'b']
    """
    tag = _TYPE_TAG.get(type(value))
    if tag is None:
        raise TypeError(f"not a fact constant: {value!r} ({type(value).__name__})")
    return tag


def const_key(value: Const) -> tuple[str, Const]:
    """A hashable, type-aware identity for a constant (``1`` and ``True`` differ)."""
    return (const_type(value), value)


def const_sort_key(value: Const) -> tuple[int, Any]:
    """Deterministic total order over mixed constants: bools, numbers, then strings."""
    tag = const_type(value)
    if tag == "b":
        return (0, int(value))
    if tag in ("i", "f"):
        return (1, value)
    return (2, value)


def render_const(value: Const) -> str:
    """Render a constant the way the rule language writes it.

    >>> [render_const(v) for v in ("acme", 1, 1.5, True)]
    ['"acme"', '1', '1.5', 'true']
    """
    if type(value) is str:  # the common case: rendered once per distinct string
        return _render_str(value)
    tag = const_type(value)
    if tag == "b":
        return "true" if value else "false"
    if tag == "s":
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


@functools.lru_cache(maxsize=4096)
def _render_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def const_to_json(value: Const) -> Any:
    """JSON form of a constant. Floats stay floats, so the type survives a round trip."""
    return value


@dataclass(frozen=True, eq=False)
class Fact:
    """A ground atom: ``pred(args...)``."""

    pred: str
    args: tuple[Const, ...]

    def key(self) -> tuple[str, tuple[tuple[str, Const], ...]]:
        return (self.pred, tuple(const_key(a) for a in self.args))

    def __eq__(self, other: object) -> bool:
        """Type-exact: ``p(1)``, ``p(1.0)`` and ``p(true)`` are three facts.

        >>> Fact("p", (1,)) == Fact("p", (1,)), Fact("p", (1,)) == Fact("p", (True,))
        (True, False)
        """
        if self is other:
            return True
        if not isinstance(other, Fact):
            return False
        a, b = self.args, other.args
        return (
            self.pred == other.pred
            and a == b
            and hash(self) == hash(other)
            and all(type(x) is type(y) for x, y in zip(a, b, strict=True))
        )

    def __hash__(self) -> int:
        # computed once per fact (facts key every set and dict of the engine, the prover and
        # the proof checker); never pickled, as string hashes differ between processes. Equal
        # facts have equal argument tuples, so those hash them (1 and True collide: __eq__
        # tells them apart, by type)
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.pred, self.args))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict[str, Any]:
        return {"pred": self.pred, "args": self.args}

    def sort_key(self) -> tuple[str, tuple[tuple[int, Any], ...]]:
        return (self.pred, tuple(const_sort_key(a) for a in self.args))

    def render(self) -> str:
        return f"{self.pred}({', '.join(render_const(a) for a in self.args)})"

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Provenance:
    """Where a fact came from.

    ``source`` is a file name (``policy.yaml``, ``traces.jsonl``) or an artifact kind (``sql``,
    ``ir``, ``ddl``, ``manifest``). ``span`` is a character range into ``text`` (the artifact's
    text, e.g. the SQL string) and ``snippet`` the spanned text.

    >>> str(Provenance("sql", span=(40, 67), snippet="accounts.tenant_id = 'acme'"))
    "sql[40:67] `accounts.tenant_id = 'acme'`"
    >>> str(Provenance("traces.jsonl", line=5))
    'traces.jsonl:5'
    """

    source: str
    line: int | None = None
    column: int | None = None
    span: tuple[int, int] | None = None
    snippet: str | None = None
    note: str | None = None

    def __str__(self) -> str:
        out = self.source
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        if self.span is not None:
            out += f"[{self.span[0]}:{self.span[1]}]"
        if self.snippet:
            out += f" `{self.snippet}`"
        if self.note:
            out += f" ({self.note})"
        return out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source}
        for name in ("line", "column", "snippet", "note"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.span is not None:
            data["span"] = list(self.span)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        span = data.get("span")
        return cls(
            source=data["source"],
            line=data.get("line"),
            column=data.get("column"),
            span=(int(span[0]), int(span[1])) if span else None,
            snippet=data.get("snippet"),
            note=data.get("note"),
        )


#: A placeholder source: facts made once with it (a SQL text's, lowered once per run) are
#: re-based onto each record's own source (:meth:`FactSet.rebased`).
SOURCE_SLOT = Provenance("\x00source", line=-1, column=-2)


@dataclass
class FactSet:
    """An insertion-ordered set of facts with provenance (first provenance wins for display,
    all are kept)."""

    _facts: dict[Fact, list[Provenance]] = field(default_factory=dict)

    def add(self, pred: str, *args: Const, prov: Provenance | None = None) -> Fact:
        for a in args:
            if type(a) not in _TYPE_TAG:
                const_type(a)  # raises: not a fact constant
        fact = Fact(pred, tuple(args))
        provs = self._facts.setdefault(fact, [])
        if prov is not None and prov not in provs:
            provs.append(prov)
        return fact

    def add_fact(self, fact: Fact, prov: Provenance | None = None) -> Fact:
        """Add ``fact`` itself (its constants validated when it is new here)."""
        if type(fact) is not Fact or type(fact.args) is not tuple:
            fact = Fact(fact.pred, tuple(fact.args))
        provs = self._facts.get(fact)
        if provs is None:
            for a in fact.args:
                if type(a) not in _TYPE_TAG:
                    const_type(a)  # raises: not a fact constant
            provs = self._facts[fact] = []
        if prov is not None and prov not in provs:
            provs.append(prov)
        return fact

    def update(self, other: FactSet) -> None:
        for fact, provs in other._facts.items():
            if not provs:
                self.add_fact(fact)
            for p in provs:
                self.add_fact(fact, p)

    def provenance(self, fact: Fact) -> list[Provenance]:
        return list(self._facts.get(fact, ()))

    def copy(self) -> FactSet:
        return FactSet({f: list(p) for f, p in self._facts.items()})

    def renamed_case(self, old: str, new: str) -> FactSet:
        """A copy whose facts with first argument ``old`` (a case id) have ``new`` there.

        >>> fs = FactSet(); _ = fs.add("sql_reads", "c1", "s0", "a", "accounts")
        >>> fs.renamed_case("c1", "c2").to_lines()
        'sql_reads("c2", "s0", "a", "accounts")\\n'
        """
        if old == new:
            return self.copy()
        out: dict[Fact, list[Provenance]] = {}
        for fact, provs in self._facts.items():
            args = fact.args
            if args and type(args[0]) is str and args[0] == old:
                fact = Fact(fact.pred, (new, *args[1:]))
            out[fact] = list(provs)
        return FactSet(out)

    def rebased(self, old: str, new: str, source: Provenance | None) -> FactSet:
        """A copy for another record: facts with first argument ``old`` (a case id) get ``new``
        there, and provenance that points at :data:`SOURCE_SLOT` (a placeholder source the
        facts were made with) points at ``source`` instead, keeping span, snippet and note.
        Without ``source`` the placeholder becomes ``sql`` (the artifact itself).

        >>> fs = FactSet()
        >>> _ = fs.add("sql_reads", "c1", "t", prov=Provenance(
        ...     SOURCE_SLOT.source, line=SOURCE_SLOT.line, column=SOURCE_SLOT.column, span=(7, 8)))
        >>> out = fs.rebased("c1", "c2", Provenance("traces.jsonl", line=5))
        >>> [(str(f), [str(p) for p in out.provenance(f)]) for f in out]
        [('sql_reads("c2", "t")', ['traces.jsonl:5[7:8]'])]
        """
        slot = SOURCE_SLOT
        cache: dict[Provenance, Provenance] = {}
        out: dict[Fact, list[Provenance]] = {}
        for fact, provs in self._facts.items():
            args = fact.args
            if args and type(args[0]) is str and args[0] == old:
                fact = Fact(fact.pred, (new, *args[1:]))
            moved = []
            for p in provs:
                if p.source == slot.source:
                    q = cache.get(p)
                    if q is None:
                        q = cache[p] = Provenance(
                            source.source if source is not None else "sql",
                            line=source.line if source is not None and p.line is not None else None,
                            column=(
                                source.column
                                if source is not None and p.column == slot.column
                                else None
                            ),
                            span=p.span,
                            snippet=p.snippet,
                            note=p.note
                            or (
                                source.note
                                if source is not None and p.column == slot.column
                                else None
                            ),
                        )
                    p = q
                moved.append(p)
            out[fact] = moved
        return FactSet(out)

    def __contains__(self, fact: object) -> bool:
        return fact in self._facts

    def __iter__(self) -> Iterator[Fact]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def by_pred(self, pred: str) -> list[Fact]:
        return [f for f in self._facts if f.pred == pred]

    def sorted(self) -> list[Fact]:
        return sorted(self._facts, key=Fact.sort_key)

    def to_lines(self) -> str:
        """Canonical text dump (one fact per line, sorted): what golden snapshots store."""
        return "".join(f.render() + "\n" for f in self.sorted())

    @classmethod
    def of(cls, facts: Iterable[Fact]) -> FactSet:
        fs = cls()
        for f in facts:
            fs.add_fact(f)
        return fs
