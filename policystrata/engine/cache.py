"""The parsed and checked rule program, cached on disk by the digest of the rule texts.

Parsing and statically checking the shipped rules costs every process a few tenths of a second;
a program loaded before with the same texts is read back instead. The cache file's name and
content carry the sha256 of the package version, the Python version and every (file name, text)
pair; a file whose recorded digest is not the digest of the texts being loaded is ignored.

The file is read with a restricted unpickler that constructs only the rule language's own AST
classes and plain containers (never a function, never an arbitrary class), from a directory
only this user can write to: a tampered file is ignored, never executed. ``STRATA_CACHE_DIR``
sets the directory (default ``$XDG_CACHE_HOME/policystrata`` or ``~/.cache/policystrata``);
``STRATA_CACHE_DIR=off`` disables the cache.

>>> import tempfile, os
>>> os.environ["STRATA_CACHE_DIR"] = tempfile.mkdtemp()
>>> texts = [("t.dl", ".decl q(a)\\np(X) :- q(X).")]
>>> load(texts) is None
True
>>> from policystrata.engine.parser import parse_texts
>>> store(texts, parse_texts(texts))
>>> [r.id for r in load(texts).rules]
['t.p.1']
>>> load([("t.dl", ".decl q(a)\\np(X) :- q(X), q(X).")]) is None
True
>>> del os.environ["STRATA_CACHE_DIR"]
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policystrata import __version__
from policystrata.engine.ast import Program

ENV = "STRATA_CACHE_DIR"
_FORMAT = 2  # 2: Program.proof_heads

#: The classes a cached program may contain.
_ALLOWED = {
    ("builtins", name)
    for name in ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool")
} | {
    ("policystrata.engine.ast", name)
    for name in (
        "Loc",
        "Var",
        "ConstTerm",
        "Atom",
        "Positive",
        "Negative",
        "Comparison",
        "Rule",
        "Decl",
        "SourceFile",
        "Program",
    )
}


def digest(texts: Sequence[tuple[str, str]]) -> str:
    """sha256 of the cache format, package and Python versions and every (name, text) pair."""
    h = hashlib.sha256(f"{_FORMAT}\0{__version__}\0{sys.version}\0".encode())
    for name, text in texts:
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def cache_dir() -> Path | None:
    value = os.environ.get(ENV)
    if value == "off":
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policystrata"


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a rule cache")
        if module == "builtins":
            return getattr(builtins, name)
        return super().find_class(module, name)


def _safe_dir(path: Path) -> bool:
    """A directory that only this user (or root) can write to."""
    try:
        st = path.stat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid in (os.getuid(), 0)
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def load(texts: Sequence[tuple[str, str]]) -> Program | None:
    """The cached program for exactly these texts, or None."""
    directory = cache_dir()
    if directory is None or not _safe_dir(directory):
        return None
    key = digest(texts)
    path = directory / f"rules-{key}.pickle"
    try:
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return None
        data = path.read_bytes()
        recorded, program = _Restricted(io.BytesIO(data)).load()
    except Exception:  # absent, unreadable, truncated, tampered: parse the texts instead
        return None
    if recorded != key or not isinstance(program, Program) or not program.checked:
        return None
    return program


def store(texts: Sequence[tuple[str, str]], program: Program) -> None:
    """Write the program for these texts (atomically; failures are ignored)."""
    directory = cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _safe_dir(directory):
            return
        key = digest(texts)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rules-")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump((key, _bare(program)), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, directory / f"rules-{key}.pickle")
    except Exception:
        return


def _bare(program: Program) -> Program:
    """The program without its derived indexes and memo (rebuilt on first use)."""
    from dataclasses import replace

    return replace(program, _by_head={}, _by_id={}, _indexed=(), proof_order={}, proof_heads={})
