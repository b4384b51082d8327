"""Monitoring reads the one model contract (`ml.contract`): the built-in one by default, or the
contract a version was logged with."""

from __future__ import annotations

from ml.contract import Feature
from ml.features import CONTRACT
from ml.monitoring.contract import feature_specs


def test_the_default_is_the_built_in_contract() -> None:
    specs = feature_specs()
    assert tuple(s.name for s in specs) == CONTRACT.names
    by_name = {s.name: s for s in specs}
    assert by_name["SEX"].categorical
    assert by_name["SEX"].codes == frozenset(CONTRACT.feature("SEX").codes or ())
    assert not by_name["AGE"].categorical
    assert (by_name["AGE"].minimum, by_name["AGE"].maximum) == (
        CONTRACT.feature("AGE").minimum,
        CONTRACT.feature("AGE").maximum,
    )


def test_a_version_contract_changes_what_monitoring_checks() -> None:
    # Given a version whose contract narrows AGE and drops a code of SEX
    narrower = CONTRACT.replaced(
        Feature("AGE", "int", minimum=21, maximum=90, reason="a new policy"),
        Feature("SEX", "int", codes=(1,), reason="a test"),
    )
    # Then monitoring's specs follow it
    by_name = {s.name: s for s in feature_specs(narrower)}
    assert by_name["AGE"].allowed() == "range [21, 90]"
    assert by_name["SEX"].allowed() == "codes 1"
