"""Where the shipped data lives: ``rules/``, ``grammars/`` and ``domains/``.

In a wheel they are installed as ``policystrata/_data/<name>``; in a source checkout (editable
install, ``uv run``) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory of shipped data ``name`` (``rules``, ``grammars`` or ``domains``)."""
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    source = _PKG.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"shipped data folder '{name}' not found (looked in {packaged})")


def rules_dir() -> Path:
    return data_dir("rules")


def grammars_dir() -> Path:
    return data_dir("grammars")


def domains_dir() -> Path:
    return data_dir("domains")


def rule_files() -> list[Path]:
    """All shipped rule files, in a deterministic order."""
    return sorted(rules_dir().glob("*.dl"))
