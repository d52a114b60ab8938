"""``strata schema``: the JSON Schemas PolicyStrata publishes."""

from __future__ import annotations

import json

import click


@click.group()
def schema() -> None:
    """Print the JSON Schemas PolicyStrata publishes."""


@schema.command("witness")
def schema_witness() -> None:
    """The JSON Schema of one witness object."""
    from policystrata.engine import proof_node_schema
    from policystrata.witness import witness_json_schema

    click.echo(json.dumps(witness_json_schema(proof_node_schema()), indent=2, sort_keys=True))


@schema.command("check-report")
def schema_check_report() -> None:
    """The JSON Schema of `strata check --format json` output."""
    from policystrata.engine import proof_node_schema
    from policystrata.witness import check_report_json_schema

    click.echo(json.dumps(check_report_json_schema(proof_node_schema()), indent=2, sort_keys=True))
