"""Parse rule files (``grammars/rules.lark``) into the AST of :mod:`policystrata.engine.ast`.

Nothing in a rule file is ever executed: Lark builds a parse tree, we build dataclasses.

>>> prog = parse_program('''
... @doc "edges"
... .decl edge(a, b: int)
... @id demo.path
... @message "{X} reaches {Y}"
... path(X, Y) :- edge(X, Y).
... ''', source="demo.dl")
>>> prog.decls["edge"].arg_types
('string', 'int')
>>> r = prog.rules[0]
>>> (r.id, r.message, r.loc.line)
('demo.path', '{X} reaches {Y}', 6)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from policystrata.engine.ast import (
    ARG_TYPES,
    Atom,
    Comparison,
    ConstTerm,
    Decl,
    Literal,
    Loc,
    Negative,
    Positive,
    Program,
    Rule,
    SourceFile,
    Term,
    Var,
)
from policystrata.engine.errors import RuleError, RuleErrors
from policystrata.paths import grammars_dir


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (grammars_dir() / "rules.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def display_name(path: Path) -> str:
    """How a rule file is named in messages: relative to the cwd when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


class _Builder:
    def __init__(self, source: str, program: Program, errors: list[RuleError]) -> None:
        self.source = source
        self.stem = Path(source).stem
        self.program = program
        self.errors = errors
        self.anon = 0

    def loc(self, node: Tree | Token) -> Loc:
        if isinstance(node, Token):
            return Loc(self.source, node.line or 0, node.column or 0)
        meta = node.meta
        return Loc(self.source, getattr(meta, "line", 0), getattr(meta, "column", 0))

    def error(self, msg: str, loc: Loc, rule_id: str | None = None) -> None:
        self.errors.append(RuleError(msg, file=loc.file, line=loc.line, rule_id=rule_id))

    def term(self, node: Tree) -> Term:
        tok = node.children[0]
        assert isinstance(tok, Token)
        kind = node.data
        if kind == "var":
            if tok == "_":
                self.anon += 1
                return Var(f"_#{self.anon}", anon=True)
            return Var(str(tok))
        if kind == "name_const":
            if tok == "true":
                return ConstTerm(True)
            if tok == "false":
                return ConstTerm(False)
            return ConstTerm(str(tok))
        if kind == "string_const":
            return ConstTerm(_unquote(str(tok)))
        if kind == "int_const":
            return ConstTerm(int(tok))
        if kind == "float_const":
            return ConstTerm(float(tok))
        raise AssertionError(kind)

    def atom(self, node: Tree) -> Atom:
        name = node.children[0]
        args = tuple(self.term(c) for c in node.children[1:] if isinstance(c, Tree))
        return Atom(str(name), args, self.loc(node))

    def literal(self, node: Tree) -> Literal:
        if node.data == "atom":
            return Positive(self.atom(node))
        if node.data == "negation":
            return Negative(self.atom(node.children[0]))
        if node.data == "comparison":
            left, op, right = node.children
            return Comparison(self.term(left), str(op), self.term(right), self.loc(node))
        raise AssertionError(node.data)

    def build(self, tree: Tree) -> None:
        pending: dict[str, str] = {}
        pending_loc: Loc | None = None
        counts: dict[str, int] = {}
        for item in tree.children:
            assert isinstance(item, Tree)
            if item.data == "annotation":
                key_tok, value = item.children
                key = str(key_tok)[1:]
                assert isinstance(value, Tree)
                raw = str(value.children[0])
                text = _unquote(raw) if value.data == "annot_string" else raw
                if key in pending:
                    self.error(f"duplicate annotation @{key}", self.loc(item))
                pending[key] = text
                pending_loc = pending_loc or self.loc(item)
                continue
            if item.data == "decl":
                self.decl(item, pending)
            else:
                head = self.atom(item.children[0])
                body: tuple[Literal, ...] = ()
                if item.data == "rule":
                    body_node = item.children[1]
                    assert isinstance(body_node, Tree)
                    body = tuple(self.literal(c) for c in body_node.children)
                counts[head.pred] = counts.get(head.pred, 0) + 1
                rule_id = pending.get("id") or f"{self.stem}.{head.pred}.{counts[head.pred]}"
                self.program.rules.append(
                    Rule(
                        head=head,
                        body=body,
                        loc=self.loc(item),
                        id=rule_id,
                        annotations=dict(pending),
                        index=len(self.program.rules),
                    )
                )
            pending, pending_loc = {}, None
        if pending and pending_loc is not None:
            self.error(
                f"annotation(s) {', '.join('@' + k for k in pending)} not followed by a"
                " clause or .decl",
                pending_loc,
            )

    def decl(self, item: Tree, annotations: dict[str, str]) -> None:
        name = str(item.children[1])
        names: list[str] = []
        types: list[str] = []
        for arg in item.children[2:]:
            if not isinstance(arg, Tree):
                continue
            toks = [str(t) for t in arg.children]
            names.append(toks[0])
            typ = toks[1] if len(toks) > 1 else "string"
            if typ not in ARG_TYPES:
                self.error(
                    f"unknown argument type '{typ}' in .decl {name} (one of"
                    f" {', '.join(ARG_TYPES)})",
                    self.loc(arg),
                )
                typ = "any"
            types.append(typ)
        loc = self.loc(item)
        if name in self.program.decls:
            prev = self.program.decls[name]
            self.error(f"predicate '{name}' is declared twice (first at {prev.loc})", loc)
            return
        self.program.decls[name] = Decl(name, tuple(names), tuple(types), loc, dict(annotations))


def _unquote(raw: str) -> str:
    value = json.loads(raw)
    assert isinstance(value, str)
    return value


def _parse_into(text: str, source: str, program: Program, errors: list[RuleError]) -> None:
    program.sources.append(SourceFile(source, text))
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        errors.append(_syntax_error(exc, source))
        return
    _Builder(source, program, errors).build(tree)


def _syntax_error(exc: UnexpectedInput, source: str) -> RuleError:
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        what = "end of file" if tok.type == "$END" else repr(str(tok))
        expected = sorted(exc.accepts or exc.expected)
        msg = f"syntax error: unexpected {what}"
        if expected and len(expected) <= 8:
            msg += f" (expected one of: {', '.join(expected)})"
    elif isinstance(exc, UnexpectedCharacters):
        msg = f"syntax error: unexpected character {exc.char!r}"
    elif isinstance(exc, UnexpectedEOF):
        msg = "syntax error: unexpected end of file"
    else:  # pragma: no cover
        msg = f"syntax error: {exc}"
    return RuleError(msg, file=source, line=exc.line, column=exc.column)


def parse_program(text: str, source: str = "<rules>", *, check: bool = True) -> Program:
    """Parse one rule text (and statically check it unless ``check=False``)."""
    return parse_texts([(source, text)], check=check)


def parse_texts(texts: Iterable[tuple[str, str]], *, check: bool = True) -> Program:
    """Parse several ``(source name, text)`` pairs into one program."""
    program = Program()
    errors: list[RuleError] = []
    for source, text in texts:
        _parse_into(text, source, program, errors)
    _check_ids(program, errors)
    if errors:
        raise RuleErrors(errors)
    if check:
        from policystrata.engine.checker import check_program

        check_program(program)
    return program


def _check_ids(program: Program, errors: list[RuleError]) -> None:
    seen: dict[str, Rule] = {}
    for r in program.rules:
        if r.id in seen:
            first = seen[r.id]
            errors.append(
                RuleError(
                    f"duplicate rule id (first used at {first.loc})",
                    file=r.file,
                    line=r.line,
                    rule_id=r.id,
                )
            )
        else:
            seen[r.id] = r


def load_program(paths: Iterable[Path | str] | None = None) -> Program:
    """Load and statically check rule files (default: all shipped ``rules/*.dl``, sorted).

    Raises :class:`RuleErrors` listing every problem found.
    """
    if paths is None:
        from policystrata.paths import rule_files

        paths = rule_files()
    texts = [(display_name(Path(p)), Path(p).read_text(encoding="utf-8")) for p in paths]
    from policystrata.engine import cache

    program = cache.load(texts)
    if program is None:
        program = parse_texts(texts)
        cache.store(texts, program)
    return program
