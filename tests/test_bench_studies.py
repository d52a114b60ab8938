"""The compound-fault study (policystrata.bench.studies, ``strata compound``): several faults in
different layers re-run through the reference stack and the detector."""

from __future__ import annotations

import json

from click.testing import CliRunner

from policystrata.bench.studies import compound_study, counterfactual_study
from policystrata.cli import main
from policystrata.layers import LAYERS
from policystrata.stack.faults import OPERATORS


def test_compound_faults_localize_the_first_layer_and_report_the_others() -> None:
    rep = compound_study("support_saas", orders=(2, 3), per_order=3, seed=5, requests=10)
    again = compound_study("support_saas", orders=(2, 3), per_order=3, seed=5, requests=10)
    assert json.dumps(rep, sort_keys=True) == json.dumps(again, sort_keys=True)  # deterministic
    for k in ("2", "3"):
        s = rep["orders"][k]
        assert s["cases"] == len(s["rows"]) > 0
        for row in s["rows"]:
            layers = [OPERATORS[o].surface for o in row["faults"]]
            assert len(set(layers)) == int(k)  # faults in different layers
            assert row["layers"] == sorted(set(layers), key=LAYERS.index)
            # the detector localizes the earliest failing layer (from its witnesses)
            assert row["localized"] == row["layers"][0] and row["first_localized"]
            assert row["localized"] not in row["also_failed"]
            # a masked fault is never the first one (nothing stops the request before it)
            assert all(OPERATORS[o].surface != row["layers"][0] for o in row["masked"])
        assert s["first_layer_localized"] == s["cases"]
    # with two faults, the later (unmasked) one is reported in also_failed
    two = rep["orders"]["2"]
    assert two["others_in_also_failed"] == two["cases"]


def test_cli_compound_rejects_bad_orders() -> None:
    res = CliRunner().invoke(main, ["compound", "--orders", "1"])
    assert res.exit_code == 2 and "2 or more" in res.output
    res = CliRunner().invoke(main, ["compound", "--orders", "two"])
    assert res.exit_code == 2 and "integers" in res.output


def test_counterfactual_removes_each_fault_and_re_runs() -> None:
    rep = counterfactual_study("support_saas", per_order=3, seed=5, requests=10)
    rows = rep["rows"]
    assert rep["faults_removed"] == len(rows) > 0
    live = [r for r in rows if not r["masked"]]
    assert rep["necessary"] == sum(r["necessary"] for r in live) > 0
    assert rep["sufficient"] == sum(r["sufficient"] for r in live) > 0
    # a masked fault has no witness of its own in the combined run: neither necessary nor
    # sufficient for anything there
    assert all(not r["necessary"] and not r["sufficient"] for r in rows if r["masked"])
    for r in rows:
        assert r["removed"] in r["faults"] and 2 <= len(r["faults"]) <= 3
