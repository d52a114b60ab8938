"""The rule-language AST: our own dataclasses, independent of Lark and of the backend.

Every node keeps ``file``/``line``/``column`` for messages. Terms are :class:`Var` or
:class:`Const` (a typed constant: ``str``, ``int``, ``float``, ``bool``). Each anonymous ``_`` is
its own variable (``anon=True``) with a unique internal name ``_#<n>``.

>>> from policystrata.engine.parser import parse_program
>>> text = '.decl q(a, b)\\n.decl r(a)\\np(X) :- q(X, _), !r(X), X != "a".'
>>> prog = parse_program(text, source="t.dl")
>>> rule = prog.rules[0]
>>> rule.id, str(rule)
('t.p.1', 'p(X) :- q(X, _), !r(X), X != "a".')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from policystrata.facts import Const, const_key, render_const

CMP_OPS = ("=", "!=", "<", "<=", ">", ">=")
ARG_TYPES = ("string", "int", "float", "bool", "any")
TYPE_OF_TAG = {"s": "string", "i": "int", "f": "float", "b": "bool"}


@dataclass(frozen=True)
class Loc:
    """A source location: file, 1-based line and column."""

    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, eq=False)
class Var:
    """A variable. ``anon`` variables come from ``_`` (each occurrence is fresh)."""

    name: str
    anon: bool = False

    # Variables key every binding environment (prover, proof checker): equality and hash by
    # hand, on the name's cached string hash, instead of the generated tuple-building ones.
    def __eq__(self, other: object) -> bool:
        return other.__class__ is Var and other.name == self.name and other.anon == self.anon

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return "_" if self.anon else self.name


@dataclass(frozen=True, eq=False)
class ConstTerm:
    """A typed constant term (``1``, ``1.0``, ``true`` and ``"1"`` are different)."""

    value: Const

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConstTerm) and const_key(self.value) == const_key(other.value)

    def __hash__(self) -> int:
        return hash(const_key(self.value))

    def __str__(self) -> str:
        return render_const(self.value)


Term = Var | ConstTerm


@dataclass(frozen=True)
class Atom:
    """``pred(t1, ..., tn)``."""

    pred: str
    args: tuple[Term, ...]
    loc: Loc

    @property
    def arity(self) -> int:
        return len(self.args)

    def vars(self) -> list[Var]:
        return [a for a in self.args if isinstance(a, Var)]

    def __str__(self) -> str:
        return f"{self.pred}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class Positive:
    """A positive body literal."""

    atom: Atom

    @property
    def loc(self) -> Loc:
        return self.atom.loc

    def vars(self) -> list[Var]:
        return self.atom.vars()

    def __str__(self) -> str:
        return str(self.atom)


@dataclass(frozen=True)
class Negative:
    """A negated body literal ``!atom`` (closed world, stratified)."""

    atom: Atom

    @property
    def loc(self) -> Loc:
        return self.atom.loc

    def vars(self) -> list[Var]:
        return self.atom.vars()

    def __str__(self) -> str:
        return f"!{self.atom}"


@dataclass(frozen=True)
class Comparison:
    """``left op right`` with op in ``= != < <= > >=``."""

    left: Term
    op: str
    right: Term
    loc: Loc

    def vars(self) -> list[Var]:
        return [t for t in (self.left, self.right) if isinstance(t, Var)]

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


Literal = Positive | Negative | Comparison


@dataclass
class Rule:
    """A clause ``head :- body.`` (a ground fact has an empty body).

    ``index`` is the position in the program (file order), ``id`` the ``@id`` annotation or
    ``<file stem>.<head pred>.<n>``.
    """

    head: Atom
    body: tuple[Literal, ...]
    loc: Loc
    id: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    index: int = 0

    @property
    def message(self) -> str | None:
        return self.annotations.get("message")

    @property
    def doc(self) -> str | None:
        return self.annotations.get("doc")

    @property
    def fix(self) -> str | None:
        return self.annotations.get("fix")

    @property
    def severity(self) -> str | None:
        return self.annotations.get("severity")

    @property
    def file(self) -> str:
        return self.loc.file

    @property
    def line(self) -> int:
        return self.loc.line

    def variables(self) -> list[Var]:
        """All variables of the clause in first-occurrence order (head first)."""
        seen: dict[Var, None] = {}
        for v in self.head.vars():
            seen.setdefault(v)
        for lit in self.body:
            for v in lit.vars():
                seen.setdefault(v)
        return list(seen)

    def __str__(self) -> str:
        if not self.body:
            return f"{self.head}."
        return f"{self.head} :- {', '.join(str(b) for b in self.body)}."


@dataclass
class Decl:
    """``.decl name(arg: type, ...)``."""

    pred: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]
    loc: Loc
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def arity(self) -> int:
        return len(self.arg_types)

    @property
    def doc(self) -> str | None:
        return self.annotations.get("doc")

    def __str__(self) -> str:
        args = ", ".join(
            n if t == "string" else f"{n}: {t}"
            for n, t in zip(self.arg_names, self.arg_types, strict=True)
        )
        return f".decl {self.pred}({args})"


@dataclass
class SourceFile:
    """One rule file's name and text (kept for :meth:`Program.digest`)."""

    name: str
    text: str


@dataclass
class Program:
    """A parsed (and, via :func:`load_program`, statically checked) rule program.

    ``compiled_order`` maps a rule index to the body order the backend uses (set by the checker:
    recursive literals first, filters as early as their variables are bound). Proofs always use
    the source order.
    """

    rules: list[Rule] = field(default_factory=list)
    decls: dict[str, Decl] = field(default_factory=dict)
    sources: list[SourceFile] = field(default_factory=list)
    compiled_order: dict[int, tuple[int, ...]] = field(default_factory=dict)
    strata: list[list[str]] = field(default_factory=list)
    checked: bool = False
    _by_head: dict[str, list[Rule]] = field(default_factory=dict, repr=False, compare=False)
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)
    _indexed: tuple[int, ...] = field(default=(), repr=False, compare=False)
    proof_order: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False, compare=False)
    """Body order the prover searches in (per rule index; filled by the prover on first use)."""
    proof_heads: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The prover's index of each predicate's rules by the constants of their heads (filled by
    the prover on first use, per predicate)."""

    def _index(self) -> None:
        """Head and id indexes, rebuilt whenever the rule list changed."""
        stamp = (id(self.rules), len(self.rules), id(self.rules[-1]) if self.rules else 0)
        if self._indexed == stamp:
            return
        by_head: dict[str, list[Rule]] = {}
        for r in self.rules:
            by_head.setdefault(r.head.pred, []).append(r)
        self._by_head = by_head
        self._by_id = {}
        for r in self.rules:
            self._by_id.setdefault(r.id, r)
        self._indexed = stamp

    def rules_for(self, pred: str) -> list[Rule]:
        """The rules whose head is ``pred``, in file order."""
        self._index()
        return list(self._by_head.get(pred, ()))

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError if none)."""
        self._index()
        return self._by_id[rule_id]

    def idb_predicates(self) -> list[str]:
        """Predicates defined by a rule head (derived), in first-definition order."""
        self._index()
        return list(self._by_head)

    def is_idb(self, pred: str) -> bool:
        self._index()
        return pred in self._by_head

    def arity(self, pred: str) -> int | None:
        if pred in self.decls:
            return self.decls[pred].arity
        self._index()
        rules = self._by_head.get(pred)
        return rules[0].head.arity if rules else None

    def digest(self) -> str:
        """sha256 over the rule files' names and texts, in load order (for run metadata)."""
        h = hashlib.sha256()
        for src in self.sources:
            h.update(src.name.encode())
            h.update(b"\0")
            h.update(src.text.encode())
            h.update(b"\0")
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """Rule metadata for reports: id -> {file, line, message, doc, fix, severity, head}."""
        return {
            r.id: {
                "file": r.file,
                "line": r.line,
                "head": r.head.pred,
                **{k: v for k, v in sorted(r.annotations.items()) if k != "id"},
            }
            for r in self.rules
        }
