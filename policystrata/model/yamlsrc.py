"""YAML loading with line numbers, and pydantic errors mapped back to file:line.

PyYAML composes a node tree whose nodes carry ``start_mark``; we construct the Python data from
that tree with the safe constructor and, walking the same tree, record the 1-based line of every
mapping key and sequence item under its key path (``("roles", "analyst", "max_rows")``,
``("principals", "acme_analyst", "tenant_ids", 0)``).

>>> doc = load_yaml_text("roles:\\n  analyst:\\n    max_rows: 10\\n", "policy.yaml")
>>> doc.data
{'roles': {'analyst': {'max_rows': 10}}}
>>> doc.line(("roles", "analyst", "max_rows"))
3
>>> doc.line(("roles", "analyst", "nope"))    # nearest recorded ancestor
2
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from policystrata.errors import InputError, InputErrors, did_you_mean, type_name

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def format_path(path: Sequence[str | int]) -> str:
    """``("roles", "analyst", "allowed_metrics", 2)`` -> ``roles.analyst.allowed_metrics[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class YamlDoc:
    """Parsed YAML data plus the line of every key path."""

    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: Sequence[str | int]) -> int | None:
        """Line of ``path``, or of its nearest recorded ancestor."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[str | int], message: str) -> InputError:
        return InputError(
            message, file=self.file, line=self.line(path), key=format_path(path) or None
        )


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that reports duplicate mapping keys instead of silently overwriting."""


def _walk(node: yaml.Node, loader: _LineLoader, path: KeyPath, doc: YamlDoc) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool) and key is not None:
                key = str(key)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InputError(
                    f"duplicate key '{key}' (first defined on line {seen[key]})",
                    file=doc.file,
                    line=line,
                    key=format_path((*path, str(key))),
                )
            seen[key] = line
            sub = (*path, key if isinstance(key, str) else str(key))
            doc.lines[sub] = line
            _walk(value_node, loader, sub, doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            doc.lines[sub] = item.start_mark.line + 1
            _walk(item, loader, sub, doc)


MAX_DEPTH = 100
"""YAML nested deeper than this is an input error (no real policy, suite or config is)."""
MAX_NODES = 100_000
"""A document whose aliases expand to more nodes than this is an input error (billion laughs)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse a node tree that aliases would expand beyond :data:`MAX_NODES` nodes, that is
    nested deeper than :data:`MAX_DEPTH`, or whose alias refers to a node containing it.
    Iterative, so the check itself cannot exhaust the stack.

    >>> check_expansion(yaml.compose("a: &x [1, 2]\\nb: *x\\n"), "t.yaml")
    >>> check_expansion(yaml.compose("a: &x [*x]\\n"), "t.yaml")
    Traceback (most recent call last):
    ...
    policystrata.errors.InputError: t.yaml:1: a YAML alias refers to a node that contains it
    """
    weight: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if done:
            total = 1 + sum(weight[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise InputError(
                    f"aliases expand this document to more than {MAX_NODES} nodes",
                    file=file,
                    line=line,
                )
            weight[key] = total
            on_path.discard(key)
            continue
        if key in weight:
            continue
        if key in on_path:
            raise InputError("a YAML alias refers to a node that contains it", file=file, line=line)
        if depth > MAX_DEPTH:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep", file=file, line=line)
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def load_yaml_text(text: str, file: str) -> YamlDoc:
    """Parse YAML text; malformed YAML raises :class:`InputError` at YAML's own mark, and so
    does YAML nested too deeply or whose aliases expand too far (:func:`check_expansion`)."""
    loader = _LineLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep", file=file) from None
        doc = YamlDoc(data=None, file=file)
        if node is None:
            return doc
        check_expansion(node, file)
        doc.lines[()] = node.start_mark.line + 1
        _walk(node, loader, (), doc)
        doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if exc.context and exc.problem:
            context = exc.context
            opened = exc.context_mark
            if opened is not None and mark is not None and opened.line != mark.line:
                # the problem shows where the parser gave up; say where the construct began
                context += f" that starts at line {opened.line + 1}"
            problem = f"{context}: {exc.problem}"
        problem = problem.replace("'<stream end>'", "the end of the file")
        return _raise_yaml(file, mark, problem)
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


def _raise_yaml(file: str, mark: Any, problem: str) -> YamlDoc:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    raise InputError(f"malformed YAML: {problem}", file=file, line=line, column=column)


def load_yaml_file(path: Path, display: str | None = None) -> YamlDoc:
    """Read and parse a YAML file; the error location uses ``display`` (default: the path)."""
    name = display or str(path)
    return load_yaml_text(read_text_file(path, name), name)


def read_text_file(path: Path, display: str) -> str:
    """A UTF-8 text file; unreadable or not UTF-8 is an :class:`InputError` at the line of the
    first bad byte."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=display) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x}", file=display, line=line, column=column
        ) from None


def _message(err: Any, allowed: Sequence[str] = ()) -> str:
    kind = err.get("type", "")
    got = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key" + (did_you_mean(str(err["loc"][-1]), allowed) if allowed else "")
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        what = "key" if err["loc"] and err["loc"][-1] == "[key]" else "value"
        return f"{what} {got!r} is not one of {', '.join(options)}" + did_you_mean(
            str(got), options
        )
    if kind == "missing":
        return "required key is missing"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {type_name(got)}"
    if kind in ("list_type", "tuple_type", "set_type"):
        return f"expected a list, got {type_name(got)}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error") and not isinstance(got, dict | list):
        msg += f" (got {got!r})"
    return msg


def validate(model: type[M], doc: YamlDoc, *, root: Sequence[str | int] = ()) -> M:
    """Validate ``doc.data`` against ``model``; errors become :class:`InputErrors` with lines.

    For ``extra_forbidden`` errors the key path ends at the unknown key itself, so its line is
    the unknown key's line.
    """
    data = doc.data
    if not isinstance(data, dict):
        raise InputErrors(
            [doc.error(root, f"expected a mapping at the top level, got {type_name(data)}")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: list[InputError] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            # pydantic adds union-member / function tags to loc; drop the ones not in the YAML.
            loc = _real_path(doc, loc)
            allowed = _keys_at(model, loc[:-1]) if err.get("type") == "extra_forbidden" else ()
            errors.append(doc.error((*root, *loc), _message(err, allowed)))
        raise InputErrors(_dedupe(errors)) from None


def _real_path(doc: YamlDoc, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Keep only the parts of a pydantic loc that walk the actual data."""
    out: list[str | int] = []
    node: Any = doc.data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif part == "[key]":
            break  # pydantic's marker for an error in a mapping key: the key itself is the path
        elif isinstance(node, dict) and isinstance(part, str) and part not in node:
            # a missing key or an unknown key at this level: it is the last meaningful part
            out.append(part)
            break
        else:
            continue  # a union tag such as 'str' or 'function-after[...]'
    return tuple(out)


def _dedupe(errors: list[InputError]) -> list[InputError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            out.append(e)
    return out


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tp
    return tp


def _keys_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The keys the model allows at ``path`` (for "did you mean"); empty when unknown.

    >>> from policystrata.model.policy import Policy
    >>> _keys_at(Policy, ("roles", "analyst"))[:4]
    ['allowed_metrics', 'allowed_dimensions', 'allowed_time_ranges', 'max_rows']
    """
    tp: Any = model
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = tp.model_fields
            tp = next((f.annotation for n, f in fields.items() if part in (n, f.alias)), None)
        elif get_origin(tp) in (list, tuple, set) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []
