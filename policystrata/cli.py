"""Command-line interface (one click group, exposed as `strata` and `policystrata`)."""

from __future__ import annotations

import click

from policystrata import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strata")
def main() -> None:
    """PolicyStrata: find where a data-agent stack's layers stopped agreeing about policy."""
