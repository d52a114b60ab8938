"""Command-line interface: one click group, installed as ``strata`` and ``policystrata``
(also ``python -m policystrata``).

Thin, in the manner of OPA's ``cmd/``: one module per command under this package, each parsing
its arguments, calling the pipeline (:mod:`policystrata.check`, the scan, the benchmark) and a
renderer (:mod:`policystrata.report`). Commands are imported only when used (fast startup), and
nothing outside this package imports it. What every command shares is in :mod:`.common`.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from policystrata import __version__
from policystrata.cli.common import EXIT_CLEAN, EXIT_INTERRUPTED, EXIT_USAGE, os_error_line, stderr
from policystrata.errors import ENV_DEBUG, debugging, set_debug

#: Commands that live with the code they drive, imported only when used (fast startup).
LAZY_COMMANDS = {
    "check": "policystrata.cli.check:check",
    "explain": "policystrata.cli.explain:explain",
    "demo": "policystrata.cli.bench:demo",
    "run": "policystrata.cli.bench:run",
    "summarize": "policystrata.cli.bench:summarize",
    "freeze-benchmark": "policystrata.cli.freeze:freeze_benchmark",
    "verify-freeze": "policystrata.cli.freeze:verify_freeze",
    "baselines": "policystrata.cli.science:baselines",
    "ablations": "policystrata.cli.science:ablations",
    "compound": "policystrata.cli.science:compound",
    "counterfactual": "policystrata.cli.science:counterfactual",
    "export": "policystrata.cli.reports:export",
    "artifact-report": "policystrata.cli.reports:artifact_report",
    "minimization-report": "policystrata.cli.reports:minimization_report",
    "evidence": "policystrata.cli.reports:evidence",
    "scan": "policystrata.cli.scan:scan",
    "doctor": "policystrata.cli.scan:doctor",
    "init-scan": "policystrata.cli.scan:init_scan",
    "init-domain": "policystrata.cli.scan:init_domain",
    "check-integration": "policystrata.cli.scan:check_integration",
    "schema": "policystrata.cli.schema:schema",
}


class StrataGroup(click.Group):
    """Keeps command order as declared; loads the commands of LAZY_COMMANDS on demand.
    Usage errors exit 2 (click's default); an unexpected error is one line and exit 2, Ctrl-C
    is exit 130 (:meth:`main`)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's ``main`` with exit codes CI can trust: click turns Ctrl-C into an ``Abort``
        that it reports as exit 1, which CI reads as "findings"; here it is 130, and an
        exception no command expected is exit 2 with one line (the traceback with --debug)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            stderr("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except SystemExit:
            raise
        except OSError as exc:  # before a command ran (click reading an argument)
            stderr(f"error: {os_error_line(exc)}")
            sys.exit(EXIT_USAGE)
        except ValueError as exc:
            if "null byte" not in str(exc):
                _internal_error(exc, args)
            stderr("error: a path contains a NUL byte")
            sys.exit(EXIT_USAGE)
        except Exception as exc:  # a bug, not a finding: never exit 1
            _internal_error(exc, args)
        sys.exit(rv if isinstance(rv, int) else EXIT_CLEAN)

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name in LAZY_COMMANDS if self._load(name) is not None]
        return [*lazy, *(n for n in self.commands if n not in lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None  # that area is not installed in this build
            raise
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None


def _internal_error(exc: BaseException, args: Sequence[str] | None) -> NoReturn:
    """One line for an exception no command expected, exit 2 (the traceback with --debug)."""
    where = f" in `strata {' '.join(_command_words(args))}`".rstrip()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    stderr(
        f"error: internal error{where}: {type(exc).__name__}"
        + (f": {first}" if first else "")
        + ("" if debugging() else " (run `strata --debug ...` for the traceback)")
    )
    if debugging():
        traceback.print_exception(exc)
    sys.exit(EXIT_USAGE)


def _command_words(args: Sequence[str] | None) -> list[str]:
    """The command (and subcommand) a user ran, without options: ``['scan']``."""
    argv = list(sys.argv[1:] if args is None else args)
    return [a for a in argv[:2] if not a.startswith("-") and "/" not in a][:1]


@click.group(cls=StrataGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strata")
@click.option(
    "--debug",
    is_flag=True,
    help=f"Show the traceback of an internal error (also ${ENV_DEBUG}=1).",
)
def main(debug: bool) -> None:
    """PolicyStrata: a regression gate for LLM data-agent stacks.

    Checks whether the layers of a data-agent stack (manifest, grammar, validator, SQL compiler,
    database row security, release filter) still agree about policy, localizes the first layer
    that broke, and proves it with a proof tree.

    \b
    Start here:
      strata demo              # the seeded benchmark, then one witness explained
      strata check --domain support_saas --principal acme_analyst \\
          --ir "ticket_count by region during last_month limit 100" \\
          --sql "select ..."
      strata check --domain support_saas traces.jsonl
      strata explain witness.json

    Exit codes: 0 clean, 1 findings, 2 usage, input or internal error, 130 interrupted.
    """
    set_debug(debug)


if __name__ == "__main__":  # pragma: no cover
    main()
