"""Helpers of the conformance suite: published-style files written here (never copied) from
COMPAT.md, loaded through the same entry points a user's files go through."""

from __future__ import annotations

import shutil
from pathlib import Path

from policystrata.paths import domains_dir

FIXTURES = Path(__file__).parent / "fixtures"


def domain_copy(tmp: Path, base: str = "support_saas", **files: str | Path | None) -> Path:
    """A copy of built-in domain ``base`` in ``tmp/<base>`` with files replaced (text or a path)
    or removed (``None``); ``schema_sql=...`` names ``schema.sql``."""
    out = tmp / base
    shutil.copytree(domains_dir() / base, out)
    for key, value in files.items():
        name = key.replace("_sql", ".sql").replace("_yaml", ".yaml")
        target = out / name
        if value is None:
            target.unlink()
        elif isinstance(value, Path):
            shutil.copy(value, target)
        else:
            target.write_text(value, encoding="utf-8")
    return out
