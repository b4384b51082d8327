"""Static checks of infra/terraform that `terraform validate` does not make.

Every variable must be typed and described, every output described (STYLE.md item 11), modules
follow the standard layout, both roots (platform, and the environment root `stack`) pin
terraform >= 1.10 (S3 lock files) and the provider, keep state in S3 with locking and expose the
outputs the bootstrap and workflows read, and each root's tfvars sets only declared variables.
HCL is read with python-hcl2 (the dev extra).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hcl2 import SerializationOptions
from hcl2.query import BlockView, DocumentView
from lark import UnexpectedInput

from tests.fixtures.terraform import ENV_OUTPUTS, PLATFORM_OUTPUTS, TF_DIR, WORKFLOW_TF_VARS

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["ecr", "ecs_service", "github_oidc", "github_role", "kms", "mlflow", "network"]
ENVS = ["staging", "production"]
SECRET_NAME = re.compile(r"password|secret|token|private_key|access_key", re.IGNORECASE)
# References to secrets (ARNs, name => ARN maps) are not secret values.
SECRET_REFERENCE = re.compile(r"_arns?$|^secrets$")


# --- Reading HCL ------------------------------------------------------------------------------

# Attribute values as plain Python: strings without their quotes, heredocs as their text,
# true -> True; any other expression stays "${...}".
VALUES = SerializationOptions(
    with_comments=False, strip_string_quotes=True, preserve_heredocs=False
)


@dataclass
class Block:
    """A top-level block: `variable "x" { ... }` has type "variable" and labels ["x"]."""

    type: str
    labels: list[str]
    line: int
    attributes: dict[str, Any]
    # Types of the direct nested blocks (validation, lifecycle, ...).
    nested: list[str]


def _document(path: Path) -> DocumentView:
    """Parse a file; a syntax error fails the test at file:line."""
    try:
        return DocumentView.parse(path.read_text())
    except UnexpectedInput as exc:
        error = exc
    # Outside the except block, and without a traceback: lark's chained exceptions and the
    # helper's frames say nothing about the file.
    pytest.fail(f"{path}:{error.line}: {error}", pytrace=False)


def _line(block: BlockView) -> int:
    # python-hcl2 8 ignores with_meta (python-hcl2#291); the lark tree keeps the position.
    return int(block.raw.to_lark().meta.line)


def _values(body: DocumentView | BlockView) -> dict[str, Any]:
    return {a.name: a.value_node.to_dict(VALUES) for a in body.attributes()}


def blocks_of(path: Path) -> list[Block]:
    """The top-level blocks of a .tf file."""
    return [
        Block(b.block_type, b.name_labels, _line(b), _values(b), [n.block_type for n in b.blocks()])
        for b in _document(path).blocks()
    ]


def tfvars_of(path: Path) -> dict[str, Any]:
    """The `name = value` settings of a .tfvars file."""
    document = _document(path)
    if blocks := document.blocks():
        block = blocks[0]
        pytest.fail(
            f"{path}:{_line(block)}: a .tfvars file sets variables, not {block.block_type} blocks"
        )
    return _values(document)


def tf_files() -> list[Path]:
    files = sorted(p for p in TF_DIR.rglob("*.tf") if ".terraform" not in p.parts)
    assert files, f"no .tf files under {TF_DIR}"
    return files


def is_described(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# --- The reader -------------------------------------------------------------------------------


def test_blocks_of_reads_tricky_hcl(tmp_path: Path) -> None:
    # Given braces inside strings, interpolations, heredocs, comments and multi-line values
    path = tmp_path / "tricky.tf"
    path.write_text("""\
# variable "commented" { }
variable "a" {
  description = "has { braces } and ${var.x["k"]} inside"
  type        = map(object({ x = string }))
  default     = { k = "}" }

  validation {
    condition     = var.a != null
    error_message = "never }"
  }
}

/* output "hidden" { } */
output "b" {
  description = <<-EOT
    A heredoc } with { braces
  EOT
  value = "%{ if true }x%{ endif }"
}

variable "c" {
  default = [
    for k, v in { a = 1 } : "${k}=${v}"
  ]
  sensitive = merge(
    var.tags,
    { b = 2 },
  ) == {}
}
""")
    # When it is read
    blocks = blocks_of(path)
    # Then exactly the three real blocks come out, with their lines and attributes
    assert [(b.type, b.labels, b.line) for b in blocks] == [
        ("variable", ["a"], 2),
        ("output", ["b"], 14),
        ("variable", ["c"], 21),
    ]
    a, b, c = blocks
    assert a.attributes["description"] == 'has { braces } and ${var.x["k"]} inside'
    assert set(a.attributes) == {"description", "type", "default"}
    assert a.nested == ["validation"]
    assert b.attributes["description"] == "A heredoc } with { braces"
    assert set(c.attributes) == {"default", "sensitive"}
    assert c.nested == []


def test_tfvars_of_returns_python_values(tmp_path: Path) -> None:
    path = tmp_path / "env.tfvars"
    path.write_text("""\
# a comment
environment = "staging" # trailing
single_nat_gateway = true
api_min_capacity   = 10
cidrs = [
  "203.0.113.0/24",
]
""")
    assert tfvars_of(path) == {
        "environment": "staging",
        "single_nat_gateway": True,
        "api_min_capacity": 10,
        "cidrs": ["203.0.113.0/24"],
    }


@pytest.mark.parametrize(
    ("read", "name", "text", "line"),
    [
        (blocks_of, "open.tf", 'variable "x" {\n  type = string\n', 3),
        (tfvars_of, "block.tfvars", 'variable "x" {}\n', 1),
    ],
    ids=["unclosed block", "block in tfvars"],
)
def test_unreadable_file_fails_at_its_file_and_line(
    tmp_path: Path, read: Callable[[Path], object], name: str, text: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(pytest.fail.Exception, match=rf"^{re.escape(str(path))}:{line}: "):
        read(path)


# --- Variables and outputs --------------------------------------------------------------------


def test_every_variable_is_typed_and_described() -> None:
    problems: list[str] = []
    count = 0
    for path in tf_files():
        for block in blocks_of(path):
            if block.type != "variable":
                continue
            count += 1
            where = f"{path.relative_to(TF_DIR)}:{block.line} variable {block.labels[0]!r}"
            if "type" not in block.attributes:
                problems.append(f"{where}: no type")
            if not is_described(block.attributes.get("description")):
                problems.append(f"{where}: no description")
    assert count > 50, f"only {count} variables found: is the reader broken?"
    assert not problems, "\n".join(problems)


def test_every_output_is_described() -> None:
    problems: list[str] = []
    count = 0
    for path in tf_files():
        for block in blocks_of(path):
            if block.type != "output":
                continue
            count += 1
            if not is_described(block.attributes.get("description")):
                where = f"{path.relative_to(TF_DIR)}:{block.line}"
                problems.append(f"{where} output {block.labels[0]!r}: no description")
    assert count > 30, f"only {count} outputs found: is the reader broken?"
    assert not problems, "\n".join(problems)


def test_no_secret_variable_has_a_default() -> None:
    # A secret with a default ends up in git; secrets come from Secrets Manager instead, and a
    # secret passed in as a variable must at least be marked sensitive.
    problems = []
    for path in tf_files():
        for block in blocks_of(path):
            name = block.labels[0] if block.labels else ""
            if block.type != "variable" or not SECRET_NAME.search(name):
                continue
            if SECRET_REFERENCE.search(name):
                continue
            where = f"{path.relative_to(TF_DIR)}:{block.line} variable {name!r}"
            if "default" in block.attributes:
                problems.append(f"{where}: has a default")
            if block.attributes.get("sensitive") is not True:
                problems.append(f"{where}: not sensitive = true")
    assert not problems, "secret-looking variables:\n" + "\n".join(problems)


# --- Layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES)
def test_module_has_standard_layout(module: str) -> None:
    directory = TF_DIR / "modules" / module
    missing = [
        name
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
        if not (directory / name).is_file()
    ]
    assert not missing, f"modules/{module} lacks {missing}"
    kinds = {b.type for b in blocks_of(directory / "variables.tf")}
    assert kinds == {"variable"}, f"modules/{module}/variables.tf holds {kinds}"
    kinds = {b.type for b in blocks_of(directory / "outputs.tf")}
    assert kinds == {"output"}, f"modules/{module}/outputs.tf holds {kinds}"


def _terraform_settings(path: Path) -> str:
    text = path.read_text()
    assert re.search(r'required_version\s*=\s*">= 1\.10"', text), f"{path}: required_version"
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text), f"{path}: aws provider source"
    assert re.search(r'version\s*=\s*"~> 5\.100"', text), f"{path}: aws provider ~> 5.100"
    return text


STACK = TF_DIR / "stack"
PLATFORM = TF_DIR / "platform"
TERRAFORM_WORKFLOW = ROOT / ".github" / "workflows" / "terraform.yml"
# Root configuration and the tfvars files that configure it.
ROOTS = {"platform": PLATFORM, "staging": STACK, "production": STACK}


def env_tfvars(root: str) -> dict[str, Any]:
    return tfvars_of(TF_DIR / "envs" / f"{root}.tfvars")


def root_variables(directory: Path) -> dict[str, Block]:
    return {b.labels[0]: b for b in blocks_of(directory / "variables.tf") if b.type == "variable"}


@pytest.mark.parametrize(
    "versions",
    [f"modules/{m}/versions.tf" for m in MODULES] + ["stack/versions.tf", "platform/versions.tf"],
)
def test_terraform_and_provider_are_pinned(versions: str) -> None:
    _terraform_settings(TF_DIR / versions)


@pytest.mark.parametrize("directory", [STACK, PLATFORM], ids=["stack", "platform"])
def test_root_keeps_locked_state_in_s3(directory: Path) -> None:
    text = _terraform_settings(directory / "versions.tf")
    backend = re.search(r'backend\s+"s3"\s*\{(?P<body>[^}]*)\}', text)
    assert backend, f"{directory.name}: no S3 backend"
    assert re.search(r"use_lockfile\s*=\s*true", backend.group("body")), "S3 lock file off"
    assert not re.search(r"\b(bucket|key)\s*=", backend.group("body")), (
        "bucket/key belong in envs/<root>.backend.hcl (partial configuration), not in git"
    )
    # Offline init (-plugin-dir) and CI both rely on the committed provider hashes.
    assert (
        'provider "registry.terraform.io/hashicorp/aws"'
        in (directory / ".terraform.lock.hcl").read_text()
    )


def test_tfvars_are_exactly_the_three_roots() -> None:
    assert sorted(p.stem for p in (TF_DIR / "envs").glob("*.tfvars")) == sorted(ROOTS)
    validation = re.search(
        r'variable\s+"environment"\s*\{.*?condition\s*=\s*(?P<condition>[^\n]+)',
        (STACK / "variables.tf").read_text(),
        re.DOTALL,
    )
    assert validation, 'stack: variable "environment" has no validation'
    for env in ("staging", "production"):
        assert f'"{env}"' in validation.group("condition")


@pytest.mark.parametrize("root", sorted(ROOTS))
def test_root_has_a_backend_example_with_its_own_state_key(root: str) -> None:
    example = TF_DIR / "envs" / f"{root}.backend.hcl.example"
    assert example.is_file(), f"envs/{root}.backend.hcl.example is missing"
    text = example.read_text()
    assert f'key    = "credit-risk/{root}/terraform.tfstate"' in text
    assert f'workspace_key_prefix = "credit-risk/{root}/workspaces"' in text


@pytest.mark.parametrize("env", ["staging", "production"])
def test_env_tfvars_names_its_own_environment(env: str) -> None:
    assert env_tfvars(env).get("environment") == env


def test_the_shared_platform_survives_a_zone_outage() -> None:
    platform = env_tfvars("platform")
    assert platform["single_nat_gateway"] is False
    assert platform["mlflow_db_multi_az"] is True
    assert env_tfvars("production")["api_min_capacity"] > env_tfvars("staging")["api_min_capacity"]


def test_production_is_never_open_to_the_internet() -> None:
    assert "0.0.0.0/0" not in env_tfvars("production")["api_allowed_cidr_blocks"]


@pytest.mark.parametrize("root", sorted(ROOTS))
def test_tfvars_sets_only_declared_variables(root: str) -> None:
    undeclared = set(env_tfvars(root)) - set(root_variables(ROOTS[root]))
    assert not undeclared, f"envs/{root}.tfvars sets undeclared {sorted(undeclared)}"


@pytest.mark.parametrize("root", sorted(ROOTS))
def test_tfvars_and_workflow_supply_every_required_variable(root: str) -> None:
    # Without a default, a variable must come from the root's tfvars or from the workflow's
    # TF_VAR_*; never both, as -var-file would silently override the workflow's value.
    tfvars = set(env_tfvars(root))
    required = {n for n, b in root_variables(ROOTS[root]).items() if "default" not in b.attributes}
    missing = required - tfvars - WORKFLOW_TF_VARS
    assert not missing, f"neither envs/{root}.tfvars nor TF_VAR_* sets {sorted(missing)}"
    assert not tfvars & WORKFLOW_TF_VARS, f"envs/{root}.tfvars overrides the workflow's TF_VAR_*"


def test_terraform_workflow_passes_the_tf_vars_the_roots_need() -> None:
    # The workflow owns these values (repository, region, state bucket); the roots expect them.
    env = yaml.safe_load(TERRAFORM_WORKFLOW.read_text()).get("env") or {}
    passed = {name.removeprefix("TF_VAR_") for name in env if name.startswith("TF_VAR_")}
    assert passed >= WORKFLOW_TF_VARS, (
        f"terraform.yml lacks TF_VAR_{sorted(WORKFLOW_TF_VARS - passed)}"
    )


@pytest.mark.parametrize(
    ("directory", "expected"),
    [(PLATFORM, PLATFORM_OUTPUTS), (STACK, ENV_OUTPUTS)],
    ids=["platform", "stack"],
)
def test_root_exposes_the_outputs_the_bootstrap_reads(
    directory: Path, expected: frozenset[str]
) -> None:
    outputs = {b.labels[0] for b in blocks_of(directory / "outputs.tf") if b.type == "output"}
    missing = expected - outputs
    assert not missing, f"{directory.name} lacks outputs {sorted(missing)}"


@pytest.mark.parametrize("directory", [STACK, PLATFORM], ids=["stack", "platform"])
def test_root_sets_default_tags(directory: Path) -> None:
    providers = blocks_of(directory / "providers.tf")
    aws = [b for b in providers if b.type == "provider" and b.labels == ["aws"]]
    assert aws, f"{directory.name}: no provider aws block"
    assert "default_tags" in aws[0].nested, f"{directory.name}: provider aws without default_tags"
    text = (directory / "providers.tf").read_text()
    for tag in ("project", "environment", "managed-by"):
        assert re.search(rf"\b{tag}\s*=", text), f"{directory.name}: default tag {tag} missing"


def test_no_task_definition_names_an_image_nothing_pushes() -> None:
    # The MLflow service once ran `mlflow:bootstrap`, a tag nothing pushed.
    for path in tf_files():
        text = path.read_text()
        assert "initial_image_tag" not in text, path
        assert ":bootstrap" not in text or "placeholder" in text, path
