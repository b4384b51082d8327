"""The layers of `ml` and `serve`, read from their imports (every import, a lazy one in a function
too): cli -> services -> domain -> adapters -> base, each module importing only its own layer or
a lower one; no import circles; only an outside system's adapter imports its client library or
runs its command-line client; serve and the training side meet only through the shared modules.

Every module is classified in LAYER_OF below. A new module that matches no entry fails
`test_every_module_has_a_layer` with the line to add: classify it when you create it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("cli", "services", "domain", "adapters", "base")
WHERE = "LAYER_OF in tests/unit/test_layers.py"

# Module -> layer. An entry ending in "." classifies a whole package (every module under it); any
# other entry is one module. Layers:
#   cli       parses and prints (ml.cli), or serves HTTP (serve's app, routes, dependencies);
#   services  use cases: one verb's work, composed of domain rules and adapters;
#   domain    the rules and formats (contract, gates, releases, records, drift, fairness...);
#   adapters  one per outside system, the only importers of its client (ml/adapters/);
#   base      errors, settings, retry policy, atomic writes, redaction: used by every layer.
LAYER_OF: dict[str, str] = {
    "ml": "base",
    "serve": "base",
    # cli
    "ml.cli": "cli",
    "ml.cli.": "cli",
    "serve.__main__": "cli",
    "ml.spark.entry": "cli",
    "serve.server": "cli",
    "serve.app": "cli",
    "serve.deps": "cli",
    "serve.routes": "cli",
    "serve.routes.": "cli",
    # services
    "ml.promotions.apply": "services",
    "ml.promotions.plan": "services",
    "ml.promotions.status": "services",
    "ml.promotions.rollback": "services",
    "ml.promotions.history": "services",
    "ml.promotions.promotion_pr": "services",
    "ml.promotions.versions": "services",
    "ml.deploy.transaction": "services",
    "ml.deploy.alias": "services",
    "ml.deploy.pinned": "services",
    "ml.deploy.approval": "services",
    "ml.deploy.migrate": "services",
    "ml.train": "services",
    "ml.pipeline": "services",
    "ml.spark.training": "services",
    "ml.spark.scoring": "services",
    "ml.spark.submit": "services",
    "ml.spark.bundle": "services",
    "ml.monitoring.drift": "services",
    "ml.feature_store.materialize": "services",
    "ml.feature_store.skew": "services",
    "ml.governance.report": "services",
    "ml.platform.bootstrap": "services",
    "ml.platform.bootstrap.": "services",
    "ml.platform.preflight": "services",
    "ml.reviewed_plan": "services",
    "ml.sticky_comment": "services",
    "serve.model_store": "services",
    "serve.watcher": "services",
    "serve.online_features": "services",
    "serve.scoring": "services",
    # domain
    "ml.contract": "domain",
    "ml.version_contract": "domain",
    "ml.scoring": "domain",
    "ml.features": "domain",
    "ml.validation": "domain",
    "ml.holdout": "domain",
    "ml.train_config": "domain",
    "ml.data": "domain",
    "ml.evaluate": "domain",
    "ml.lineage": "domain",
    "ml.batch": "domain",
    "ml.notify": "domain",
    "ml.tfplan": "domain",
    "ml.promotions": "domain",
    "ml.promotions.spec": "domain",
    "ml.promotions.records": "domain",
    "ml.promotions.reconcile": "domain",
    "ml.promotions.gates": "domain",
    "ml.promotions.gates.": "domain",
    "ml.promotions.canary": "domain",
    "ml.promotions.config": "domain",
    "ml.promotions.render": "domain",
    "ml.deploy": "domain",
    "ml.deploy.release": "domain",
    "ml.deploy.records": "domain",
    "ml.deploy.scan": "domain",
    "ml.deploy.settings": "domain",
    "ml.deploy.image_ref": "domain",
    "ml.deploy.images": "domain",
    "ml.deploy.ecr": "domain",
    "ml.deploy.compose": "domain",
    "ml.deploy.rollout": "domain",
    "ml.deploy.smoke": "domain",
    "ml.monitoring": "domain",
    "ml.monitoring.config": "domain",
    "ml.monitoring.contract": "domain",
    "ml.monitoring.engine": "domain",
    "ml.monitoring.logs": "domain",
    "ml.monitoring.reference": "domain",
    "ml.governance": "domain",
    "ml.governance.card": "domain",
    "ml.governance.canary_fairness": "domain",
    "ml.governance.config": "domain",
    "ml.governance.fairness": "domain",
    "ml.governance.gates": "domain",
    "ml.governance.monitoring": "domain",
    "ml.governance.path_contributions": "domain",
    "ml.governance.reasons": "domain",
    "ml.governance.training": "domain",
    "ml.feature_store": "domain",
    "ml.feature_store.layout": "domain",
    "ml.feature_store.source": "domain",
    "ml.feature_store.snapshots": "domain",
    "ml.platform": "domain",
    "ml.platform.config": "domain",
    "ml.platform.workflows": "domain",
    "ml.platform.docs_table": "domain",
    "serve.predictor": "domain",
    "serve.request_parser": "domain",
    "serve.schemas": "domain",
    "serve.reasons": "domain",
    "serve.logging": "domain",
    "serve.tree_ensemble": "domain",
    "serve.xgboost_inplace": "domain",
    # adapters
    "ml.adapters": "adapters",
    "ml.adapters.": "adapters",
    "ml.registry": "adapters",
    "ml.spark": "adapters",
    "ml.spark.session": "adapters",
    "ml.spark.emr_serverless": "adapters",
    "ml.monitoring.pushgateway": "adapters",
    "ml.feature_store.redis_adapter": "adapters",
    "serve.metrics": "adapters",
    # base
    "ml.errors": "base",
    "ml.config_file": "base",
    "ml.settings": "base",
    "ml.waits": "base",
    "ml.atomic_output": "base",
    "serve.errors": "base",
    "serve.redaction": "base",
    "serve.settings": "base",
}

# Import circles that exist today, each named with its reason; the check fails on any other.
KNOWN_CIRCLES: list[frozenset[str]] = []

# The client libraries of outside systems: only their adapter imports them (botocore's exception
# types aside: callers catch them where they turn a failure into their own error).
CLIENTS: dict[str, tuple[str, ...]] = {
    "boto3": ("ml.adapters.aws",),
    "docker": ("ml.adapters.docker",),
    "redis": ("ml.feature_store.redis_adapter",),
    "mlflow": ("ml.registry", "ml.adapters.mlflow_models"),
}
# Client imports that exist today outside their adapter, each named with its reason; the check
# fails on any other.
KNOWN_CLIENT_IMPORTS: frozenset[tuple[str, str]] = frozenset()

# The command-line clients of outside systems: only their adapter runs them (an argv list whose
# first item is the program's name).
PROGRAMS: dict[str, tuple[str, ...]] = {
    "git": ("ml.adapters.git",),
    "gh": ("ml.adapters.github",),
    "docker": ("ml.adapters.docker",),
    "docker-compose": ("ml.adapters.docker",),
}

# serve and the training side meet only here: the contract and its lookup, the MLflow adapters,
# the scoring kernel every path scores through (ml.scoring), the online store's key layout and
# client, the reason texts and their reviewed settings (a version carries them), and the error
# types (ml -> serve); the booster predictor, its errors and the redaction (serve -> ml).
SHARED_WITH_SERVE = frozenset(
    {
        "ml.errors",
        "ml.contract",
        "ml.version_contract",
        "ml.registry",
        "ml.adapters.mlflow_models",
        "ml.feature_store.layout",
        "ml.feature_store.redis_adapter",
        "ml.governance.reasons",
        "ml.governance.config",
        "ml.scoring",
    }
)
SHARED_WITH_TRAINING = frozenset({"serve.predictor", "serve.errors", "serve.redaction"})
# Crossings that exist today, each named with its reason; the check fails on any other.
KNOWN_CROSSINGS = frozenset(
    {
        # The canary reads serve's default decision threshold when the gates file sets none.
        ("ml.promotions.canary", "serve.settings"),
        # `mlops serve` is the server's entry point: it reads serve's settings and starts it.
        ("ml.cli.serve", "serve.server"),
        ("ml.cli.serve", "serve.settings"),
    }
)

Graph = Mapping[str, set[str]]


def module_name(path: Path, root: Path) -> str:
    """`ml/deploy/images.py` -> `ml.deploy.images`; a package's `__init__.py` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages: Iterable[str] = ("ml", "serve")) -> dict[str, set[str]]:
    """Every module of `packages` under `root` -> the modules of those packages it imports, and
    the top-level names of everything else it imports (under the key `<module>!outside`)."""
    files = {module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        inside: set[str] = set()
        outside: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                names = [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                found = resolve(name) if name.split(".")[0] in packages else None
                if found:
                    inside.add(found)
                elif name.split(".")[0] not in packages:
                    outside.add(name.split(".")[0])
        inside.discard(module)
        graph[module] = inside
        graph[f"{module}!outside"] = outside
    return graph


def layer_of(module: str, mapping: Mapping[str, str] = LAYER_OF) -> str | None:
    """The layer of `module`: its own entry, else the longest package entry ("pkg.") above it."""
    if module in mapping:
        return mapping[module]
    packages = [p for p in mapping if p.endswith(".") and module.startswith(p)]
    return mapping[max(packages, key=len)] if packages else None


def unclassified(graph: Graph, mapping: Mapping[str, str] = LAYER_OF) -> list[str]:
    """A line per module no entry classifies."""
    return [
        f"{m} has no layer: add it to {WHERE} (one of {', '.join(LAYERS)})"
        for m in sorted(graph)
        if "!" not in m and layer_of(m, mapping) is None
    ]


def layer_violations(graph: Graph, mapping: Mapping[str, str] = LAYER_OF) -> list[str]:
    """A line per import of a higher layer (a domain module importing a service, ...)."""
    problems = []
    for module, deps in sorted(graph.items()):
        mine = layer_of(module, mapping)
        if "!" in module or mine is None:
            continue
        for dep in sorted(deps):
            theirs = layer_of(dep, mapping)
            if theirs is not None and LAYERS.index(theirs) < LAYERS.index(mine):
                problems.append(f"{module} ({mine}) imports {dep} ({theirs}), a higher layer")
    return problems


def circles(graph: Graph) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    nodes = [m for m in graph if "!" not in m]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def client_violations(graph: Graph) -> list[str]:
    """A line per module outside an adapter that imports an outside system's client."""
    problems = []
    for key, names in sorted(graph.items()):
        if not key.endswith("!outside"):
            continue
        module = key.removesuffix("!outside")
        for client, owners in CLIENTS.items():
            if (
                client in names
                and module not in owners
                and (module, client) not in KNOWN_CLIENT_IMPORTS
            ):
                problems.append(f"{module} imports {client}: only {', '.join(owners)} may")
    return problems


def program_runs(root: Path, packages: Iterable[str] = ("ml", "serve")) -> list[str]:
    """A line per argv list naming an outside system's CLI (`["git", ...]`) outside its adapter."""
    problems = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            module = module_name(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.List) and node.elts):
                    continue
                first = node.elts[0]
                if not (isinstance(first, ast.Constant) and first.value in PROGRAMS):
                    continue
                if module not in PROGRAMS[first.value]:
                    owners = ", ".join(PROGRAMS[first.value])
                    problems.append(f"{module} runs {first.value}: only {owners} may")
    return problems


def crossings(graph: Graph) -> list[str]:
    """A line per import between serve and the training side outside the shared modules."""
    problems = []
    for module, deps in sorted(graph.items()):
        if "!" in module:
            continue
        side = module.split(".")[0]
        for dep in sorted(deps):
            other = dep.split(".")[0]
            if other == side or (module, dep) in KNOWN_CROSSINGS:
                continue
            shared = SHARED_WITH_SERVE if other == "ml" else SHARED_WITH_TRAINING
            if dep not in shared:
                problems.append(
                    f"{module} imports {dep}: {side} and {other} share only {sorted(shared)}"
                )
    return problems


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = import_graph(ROOT)
    assert len(found) > 200  # both packages were read
    return found


def test_every_module_has_a_layer(graph: Graph) -> None:
    assert unclassified(graph) == []


def test_no_module_imports_a_higher_layer(graph: Graph) -> None:
    assert layer_violations(graph) == []


def test_no_import_circles_but_the_known_ones(graph: Graph) -> None:
    assert [c for c in circles(graph) if c not in KNOWN_CIRCLES] == []


def test_only_adapters_import_outside_clients(graph: Graph) -> None:
    assert client_violations(graph) == []


def test_only_adapters_run_outside_command_line_clients() -> None:
    assert program_runs(ROOT) == []


def test_serve_and_training_meet_only_through_the_shared_modules(graph: Graph) -> None:
    assert crossings(graph) == []


# --- the checks fail on a planted violation --------------------------------------------------


def _plant(tmp_path: Path, files: Mapping[str, str]) -> dict[str, set[str]]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return import_graph(tmp_path)


def test_a_planted_upward_import_fails(tmp_path: Path) -> None:
    # Given an adapter that imports a CLI module (lazily, inside a function)
    graph = _plant(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/cli/__init__.py": "",
            "ml/cli/base.py": "",
            "ml/adapters/__init__.py": "",
            "ml/adapters/git.py": "def f():\n    from ml.cli import base\n",
            "serve/__init__.py": "",
        },
    )
    # Then the layer check names it
    assert layer_violations(graph) == [
        "ml.adapters.git (adapters) imports ml.cli.base (cli), a higher layer"
    ]


def test_a_planted_circle_a_client_import_and_a_crossing_fail(tmp_path: Path) -> None:
    graph = _plant(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/contract.py": "from ml import features\n",
            "ml/features.py": "from . import contract\nimport boto3\n",
            "ml/train.py": "",
            "serve/__init__.py": "",
            "serve/app.py": "import ml.train\n",
        },
    )
    assert circles(graph) == [frozenset({"ml.contract", "ml.features"})]
    assert client_violations(graph) == ["ml.features imports boto3: only ml.adapters.aws may"]
    assert [line.split(":")[0] for line in crossings(graph)] == ["serve.app imports ml.train"]


def test_a_planted_git_run_outside_the_git_adapter_fails(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/adapters/__init__.py": "",
            "ml/adapters/git.py": "CMD = ['git', 'status']\n",
            "ml/platform.py": "import subprocess\nsubprocess.run(['git', 'rev-parse', 'HEAD'])\n",
            "serve/__init__.py": "",
        },
    )
    assert program_runs(tmp_path) == ["ml.platform runs git: only ml.adapters.git may"]


def test_a_new_module_without_a_layer_fails_saying_where_to_add_it(tmp_path: Path) -> None:
    graph = _plant(tmp_path, {"ml/__init__.py": "", "ml/brand_new.py": "", "serve/__init__.py": ""})
    (problem,) = unclassified(graph)
    assert problem.startswith("ml.brand_new has no layer: add it to LAYER_OF in")


def test_a_planted_mlflow_import_outside_its_adapters_fails(tmp_path: Path) -> None:
    # Given training logging a model itself (lazily), next to the two MLflow adapters
    graph = _plant(
        tmp_path,
        {
            "ml/__init__.py": "",
            "ml/registry.py": "def client():\n    from mlflow import MlflowClient\n",
            "ml/adapters/__init__.py": "",
            "ml/adapters/mlflow_models.py": "def load():\n    import mlflow.pyfunc\n",
            "ml/train.py": "def log():\n    import mlflow.xgboost\n",
            "serve/__init__.py": "",
            "serve/predictor.py": "from mlflow.pyfunc import load_model\n",
        },
    )
    # Then only the planted imports are named
    assert client_violations(graph) == [
        "ml.train imports mlflow: only ml.registry, ml.adapters.mlflow_models may",
        "serve.predictor imports mlflow: only ml.registry, ml.adapters.mlflow_models may",
    ]
