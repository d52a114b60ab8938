"""What every command shares: exit codes, error reporting, the domain and rules options.

stdout carries only the report; progress and notes go to stderr. Exit codes CI can trust: 0
clean, 1 findings, 2 usage or input error, and also 2 for an unexpected internal error (one
line; ``strata --debug ...`` or ``STRATA_DEBUG=1`` shows the traceback), never 1. Ctrl-C exits
130 after cleaning up (a throwaway database server is stopped).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from policystrata.errors import StrataError, debugging

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT): 128 + 2, as shells report it."""


def stderr(message: str) -> None:
    click.echo(message, err=True)


def os_error_line(exc: OSError) -> str:
    """An operating-system error in one line, naming the file.

    >>> os_error_line(OSError(30, "Read-only file system", "/out/scan.json"))
    '/out/scan.json: Read-only file system'
    """
    what = exc.strerror or str(exc)
    name = exc.filename
    return f"{name}: {what}" if name else what


def reports_errors(func: F) -> F:
    """Turn StrataError (bad input: YAML, rules, IR, arguments) and an OS error (an unwritable
    or full --out, an unreadable file) into one line on stderr + exit 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StrataError as exc:
            for line in str(exc).splitlines():
                stderr(f"error: {line}")
            sys.exit(exc.exit_code)
        except OSError as exc:
            stderr(f"error: {os_error_line(exc)}")
            if debugging():
                traceback.print_exc()
            sys.exit(EXIT_USAGE)
        except ValueError as exc:
            if "null byte" not in str(exc):
                raise
            stderr("error: a path contains a NUL byte")
            sys.exit(EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def domain_options(func: F) -> F:
    func = click.option(
        "--domain-path",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="A domain directory outside the package (policy.yaml, surfaces.yaml, schema.sql).",
    )(func)
    func = click.option(
        "--domain",
        default=None,
        metavar="NAME",
        help="A built-in domain (e.g. support_saas). Default: support_saas.",
    )(func)
    return func


def executor_options(func: F) -> F:
    """--jobs, --executor and --ray-address (run and scan: outputs byte-identical either way)."""
    func = click.option(
        "--ray-address",
        metavar="ADDR",
        default=None,
        help="The Ray cluster to join (e.g. ray://head:10001 or auto); default: a local runtime.",
    )(func)
    func = click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="local: --jobs processes on this machine; ray: Ray actors (needs policystrata[ray]), "
        "on a local Ray runtime or the cluster at --ray-address. Outputs are byte-identical.",
    )(func)
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=None,
        help="Worker processes (default: the number of cores). Outputs are byte-identical "
        "whatever the number.",
    )(func)


def scan_config_option(func: F) -> F:
    """--config: the scan config file (scan and doctor)."""
    return click.option(
        "--config",
        "config_path",
        default="policystrata.yaml",
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The scan config (published policystrata.yaml format).",
    )(func)


def rules_option(func: F) -> F:
    return click.option(
        "--rules",
        "extra_rules",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="Extra rule file (.dl) or directory of rule files, checked and loaded with the "
        "shipped rules. Repeatable.",
    )(func)


def domain_ref(domain: str | None, domain_path: Path | None) -> str | Path:
    """The domain to load: a built-in name (--domain) or a directory (--domain-path)."""
    if domain and domain_path:
        raise click.UsageError("give --domain or --domain-path, not both")
    return domain_path if domain_path is not None else (domain or "support_saas")


def expand_rule_paths(paths: tuple[Path, ...]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.dl")) if p.is_dir() else [p])
    return out
