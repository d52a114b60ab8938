"""docs/architecture.md's worked example runs as written: a new layer check is one rule-file
edit, and everything downstream (localization, proof, witness, explain) follows from it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from policystrata.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_worked_example_adds_a_check_with_one_rule(tmp_path: Path) -> None:
    [rule] = _blocks("prolog")
    (tmp_path / "offset.dl").write_text(rule)
    command = next(b for b in _blocks("sh") if "--rules offset.dl" in b)
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:2] == ["strata", "check"]
    args = [a if a != "offset.dl" else str(tmp_path / "offset.dl") for a in argv[1:]]
    runner = CliRunner()
    found = runner.invoke(main, [*args, "--format", "json"])
    assert found.exit_code == 1, found.output
    witnesses = [w for r in json.loads(found.stdout)["results"] for w in r["witnesses"]]
    assert [(w["rule_id"], w["localized_surface"], w["key"]) for w in witnesses] == [
        ("compiler.offset_paging", "compiler", 100)
    ]
    saved = tmp_path / "w.json"
    saved.write_text(json.dumps(witnesses[0]))
    explained = runner.invoke(main, ["explain", "--rules", str(tmp_path / "offset.dl"), str(saved)])
    assert explained.exit_code == 0, explained.output
    sql = args[args.index("--sql") + 1]
    without = [*args[: args.index("--sql") + 1], sql.replace(" offset 100", ""), "--format", "json"]
    assert runner.invoke(main, without).exit_code == 0
    # without the rule the offset goes unnoticed: the one rule is the whole change
    rules_at = args.index("--rules")
    plain = args[:rules_at] + args[rules_at + 2 :]
    assert runner.invoke(main, plain).exit_code == 0
