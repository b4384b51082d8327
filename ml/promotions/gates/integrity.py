"""The gates on a version's own records: it is served in a known flavor, carries its required
tags and its data is still in the DVC remote, `rollback: true` names a real step back, and it
loads and scores as serving loads it. None of them compares with production.
"""

from __future__ import annotations

from collections.abc import Iterable

from ml.errors import ContractError, RegistryError
from ml.promotions.gates.base import GateInput, gate
from ml.promotions.records import is_rollback


@gate("flavor")
def flavor(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    servable = g.config.servable_flavors
    if not servable:
        return
    flavors = g.registry.flavors(g.info.name, g.info.version)
    ok = bool(set(flavors) & set(servable))
    hint = "" if ok else " (hint: register the model in a flavor the image serves)"
    yield "flavor", ok, f"logged as {flavors}; the serve image loads {list(servable)}{hint}"


@gate("tag")
def tags(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    for tag in g.config.required_tags or ():
        value = g.info.tags.get(tag)
        yield f"tag:{tag}", bool(value), f"{tag}={value!r}" if value else f"missing tag {tag}"


@gate("data_in_remote")
def data_in_remote(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    # The object the version was trained on is still in the DVC remote (ml.lineage).
    from ml.lineage import data_in_remote as in_remote

    yield from in_remote(g.info.tags, f"{g.info.name} v{g.info.version}")


@gate("rollback-marker")
def rollback_marker(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    if not g.rollback:
        return
    v = g.info.version
    if is_rollback(g.state, v):
        yield (
            "rollback-marker",
            True,
            f"rollback: true and v{v} is older than, or was once, production",
        )
    else:
        yield (
            "rollback-marker",
            False,
            f"rollback: true but v{v} is neither older than production nor was ever production "
            "(hint: remove `rollback: true`)",
        )


@gate("loadable")
def loadable(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    """Load the booster from the artefact store as serving does and score its logged input
    example and the contract's probe rows: a version that cannot be served never moves."""
    try:
        model = g.scoring_model()
        model.self_test()
    except (RegistryError, ContractError) as exc:
        yield (
            "loadable",
            False,
            f"{exc} (hint: this version cannot be served; register one from an intact run)",
        )
        return
    yield (
        "loadable",
        True,
        f"loads from the artefact store and scores its input example ({len(model.example)} "
        f"rows) and the {len(model.probes())} probe rows of its {model.contract_source} contract",
    )
