"""Static checks of infra/terraform that `terraform validate` does not make.

Every variable must be typed and described, every output described (STYLE.md item 11), modules
follow the standard layout, the stack root pins terraform and the provider, keeps state in S3
with locking and exposes the outputs the workflows read, and each environment's tfvars names it
and sets only declared variables. HCL is read with a small tokenizer (strings, interpolations,
heredocs and comments aware) so no HCL library is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.fixtures.terraform import TF_DIR, WORKFLOW_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["ecr", "ecs_service", "github_oidc", "kms", "mlflow", "network"]
ENVS = ["staging", "production"]
SECRET_NAME = re.compile(r"password|secret|token|private_key|access_key", re.IGNORECASE)
# References to secrets (ARNs, name => ARN maps) are not secret values.
SECRET_REFERENCE = re.compile(r"_arns?$|^secrets$")


# --- A minimal HCL block scanner --------------------------------------------------------------


@dataclass
class Token:
    kind: str  # ident, string, heredoc, lbrace, rbrace, open, close, equals, newline, other
    value: str
    line: int


@dataclass
class Block:
    type: str
    labels: list[str]
    line: int
    # Top-level attributes of the block body: name -> first token of the value.
    attributes: dict[str, Token] = field(default_factory=dict)
    # Direct nested blocks (validation, lifecycle, ...), by type.
    nested: list[str] = field(default_factory=list)


class HclError(ValueError):
    """The scanner could not make sense of a file (unbalanced braces, open string)."""


def _skip_template(text: str, i: int, line: int) -> tuple[int, int, str]:
    """Skip a quoted string starting at text[i] == '"'; return (end, line, literal content).

    Interpolations `${ ... }` and directives `%{ ... }` may hold nested strings and braces.
    """
    assert text[i] == '"'
    i += 1
    out: list[str] = []
    while i < len(text):
        c = text[i]
        if c == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            return i + 1, line, "".join(out)
        if c == "\n":
            raise HclError(f"line {line}: newline inside a quoted string")
        if c in "$%" and text.startswith("{", i + 1) and not text.startswith(c * 2, i - 1):
            depth = 0
            j = i + 1
            while j < len(text):
                if text[j] == '"':
                    j, line, _ = _skip_template(text, j, line)
                    continue
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
            continue
        out.append(c)
        i += 1
    raise HclError(f"line {line}: unterminated string")


def tokenize(text: str) -> list[Token]:
    """Split HCL into the few token kinds the block scanner needs."""
    tokens: list[Token] = []
    i, line = 0, 1
    heredoc = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n")
    while i < len(text):
        c = text[i]
        if c == "\n":
            tokens.append(Token("newline", c, line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                raise HclError(f"line {line}: unterminated /* comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif c == '"':
            start_line = line
            i, line, value = _skip_template(text, i, line)
            tokens.append(Token("string", value, start_line))
        elif m := heredoc.match(text, i):
            marker = m.group(1)
            body_start = m.end()
            end = re.compile(rf"^[ \t]*{marker}[ \t]*$", re.MULTILINE).search(text, body_start)
            if end is None:
                raise HclError(f"line {line}: heredoc {marker} never ends")
            body = text[body_start : end.start()]
            tokens.append(Token("heredoc", body, line))
            line += text.count("\n", i, end.end())
            i = end.end()
        elif c == "{":
            tokens.append(Token("lbrace", c, line))
            i += 1
        elif c == "}":
            tokens.append(Token("rbrace", c, line))
            i += 1
        elif c in "([":
            tokens.append(Token("open", c, line))
            i += 1
        elif c in ")]":
            tokens.append(Token("close", c, line))
            i += 1
        elif c == "=" and text[i + 1 : i + 2] not in ("=", ">") and text[i - 1] not in "!<>=":
            tokens.append(Token("equals", c, line))
            i += 1
        elif m := re.compile(r"[A-Za-z_][A-Za-z0-9_-]*").match(text, i):
            tokens.append(Token("ident", m.group(0), line))
            i = m.end()
        else:
            tokens.append(Token("other", c, line))
            i += 1
    return tokens


def parse_blocks(text: str) -> list[Block]:
    """Top-level blocks with their labels, top-level attributes and nested block types."""
    tokens = tokenize(text)
    blocks: list[Block] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "newline":
            i += 1
            continue
        if t.kind != "ident":
            raise HclError(f"line {t.line}: expected a block or attribute, found {t.value!r}")
        j = i + 1
        labels: list[str] = []
        while j < len(tokens) and tokens[j].kind in ("string", "ident"):
            labels.append(tokens[j].value)
            j += 1
        if j >= len(tokens) or tokens[j].kind != "lbrace":
            # A top-level attribute (only in .tfvars files): skip to the end of the line.
            while j < len(tokens) and tokens[j].kind != "newline":
                j += 1
            i = j
            continue
        block = Block(t.value, labels, t.line)
        depth = 1
        brackets = 0  # ( and [ nesting: a line inside a multi-line list or call is no attribute
        j += 1
        at_line_start = True
        while j < len(tokens) and depth > 0:
            tok = tokens[j]
            if tok.kind == "lbrace":
                depth += 1
            elif tok.kind == "rbrace":
                depth -= 1
            elif tok.kind == "open":
                brackets += 1
            elif tok.kind == "close":
                brackets -= 1
            elif depth == 1 and brackets == 0 and at_line_start and tok.kind == "ident":
                nxt = tokens[j + 1] if j + 1 < len(tokens) else None
                if nxt is not None and nxt.kind == "equals":
                    value = tokens[j + 2] if j + 2 < len(tokens) else Token("other", "", tok.line)
                    block.attributes[tok.value] = value
                else:
                    block.nested.append(tok.value)
            at_line_start = tok.kind in ("newline", "lbrace")
            j += 1
        if depth != 0:
            raise HclError(f"line {t.line}: block {t.value} {labels} is never closed")
        blocks.append(block)
        i = j
    return blocks


def parse_assignments(text: str) -> dict[str, str]:
    """Top-level `name = value` lines of a .tfvars file: name -> value, strings kept quoted."""
    tokens = tokenize(text)
    values: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "newline":
            i += 1
            continue
        if t.kind != "ident" or i + 1 >= len(tokens) or tokens[i + 1].kind != "equals":
            raise HclError(f"line {t.line}: expected `name = value`, found {t.value!r}")
        parts: list[str] = []
        depth = 0  # a list or object value may span lines
        j = i + 2
        while j < len(tokens) and (depth > 0 or tokens[j].kind != "newline"):
            tok = tokens[j]
            depth += tok.kind in ("lbrace", "open")
            depth -= tok.kind in ("rbrace", "close")
            if tok.kind != "newline":
                parts.append(f'"{tok.value}"' if tok.kind == "string" else tok.value)
            j += 1
        values[t.value] = "".join(parts)
        i = j
    return values


def tf_files() -> list[Path]:
    files = sorted(p for p in TF_DIR.rglob("*.tf") if ".terraform" not in p.parts)
    assert files, f"no .tf files under {TF_DIR}"
    return files


def blocks_of(path: Path) -> list[Block]:
    try:
        return parse_blocks(path.read_text())
    except HclError as exc:
        pytest.fail(f"{path.relative_to(ROOT)}: {exc}")


def is_described(token: Token | None) -> bool:
    return token is not None and token.kind in ("string", "heredoc") and bool(token.value.strip())


# --- The scanner itself -----------------------------------------------------------------------


def test_scanner_reads_tricky_hcl() -> None:
    # Given braces inside strings, interpolations, heredocs and comments
    text = """
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
    for k, v in { a = 1 } : k => v
  ]
  sensitive = merge(
    var.tags,
    { b = 2 },
  ) == {}
}
"""
    # When it is scanned
    blocks = parse_blocks(text)
    # Then exactly the three real blocks come out, with their attributes
    assert [(b.type, b.labels) for b in blocks] == [
        ("variable", ["a"]),
        ("output", ["b"]),
        ("variable", ["c"]),
    ]
    a, b, c = blocks
    assert set(a.attributes) == {"description", "type", "default"}
    assert a.nested == ["validation"]
    assert "condition" not in a.attributes
    assert is_described(b.attributes.get("description"))
    assert set(c.attributes) == {"default", "sensitive"}
    assert c.nested == []


def test_tfvars_reader_keeps_types_and_multi_line_values() -> None:
    text = """
# a comment
environment = "staging" # trailing
single_nat_gateway = true
api_min_capacity   = 10
cidrs = [
  "203.0.113.0/24",
]
"""
    assert parse_assignments(text) == {
        "environment": '"staging"',
        "single_nat_gateway": "true",
        "api_min_capacity": "10",
        "cidrs": '["203.0.113.0/24",]',
    }
    with pytest.raises(HclError):
        parse_assignments('variable "x" {}\n')


def test_scanner_rejects_unbalanced_braces() -> None:
    with pytest.raises(HclError):
        parse_blocks('variable "x" {\n  type = string\n')


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
    assert count > 50, f"only {count} variables found: is the scanner broken?"
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
    assert count > 30, f"only {count} outputs found: is the scanner broken?"
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
            sensitive = block.attributes.get("sensitive")
            if sensitive is None or sensitive.value != "true":
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
    assert re.search(r'required_version\s*=\s*">= 1\.9"', text), f"{path}: required_version"
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text), f"{path}: aws provider source"
    assert re.search(r'version\s*=\s*"~> 5\.100"', text), f"{path}: aws provider ~> 5.100"
    return text


STACK = TF_DIR / "stack"
TERRAFORM_WORKFLOW = ROOT / ".github" / "workflows" / "terraform.yml"
# Variables the terraform workflow passes as TF_VAR_* rather than through envs/<env>.tfvars.
WORKFLOW_TF_VARS = {
    name.removeprefix("TF_VAR_")
    for name in yaml.safe_load(TERRAFORM_WORKFLOW.read_text())["env"]
    if name.startswith("TF_VAR_")
}


def env_tfvars(env: str) -> dict[str, str]:
    path = TF_DIR / "envs" / f"{env}.tfvars"
    try:
        return parse_assignments(path.read_text())
    except HclError as exc:
        pytest.fail(f"{path.relative_to(ROOT)}: {exc}")


def stack_variables() -> dict[str, Block]:
    return {b.labels[0]: b for b in blocks_of(STACK / "variables.tf") if b.type == "variable"}


@pytest.mark.parametrize(
    "versions", [f"modules/{m}/versions.tf" for m in MODULES] + ["stack/versions.tf"]
)
def test_terraform_and_provider_are_pinned(versions: str) -> None:
    _terraform_settings(TF_DIR / versions)


def test_stack_keeps_locked_state_in_s3() -> None:
    text = _terraform_settings(STACK / "versions.tf")
    backend = re.search(r'backend\s+"s3"\s*\{(?P<body>[^}]*)\}', text)
    assert backend, "stack: no S3 backend"
    assert re.search(r"use_lockfile\s*=\s*true", backend.group("body")), "S3 lock file off"
    assert not re.search(r"\b(bucket|key)\s*=", backend.group("body")), (
        "bucket/key belong in envs/<env>.backend.hcl (partial configuration), not in git"
    )
    # Offline init (-plugin-dir) and CI both rely on the committed provider hashes.
    assert (
        'provider "registry.terraform.io/hashicorp/aws"'
        in (STACK / ".terraform.lock.hcl").read_text()
    )


def test_envs_are_exactly_staging_and_production() -> None:
    assert sorted(p.stem for p in (TF_DIR / "envs").glob("*.tfvars")) == sorted(ENVS)
    validation = re.search(
        r'variable\s+"environment"\s*\{.*?condition\s*=\s*(?P<condition>[^\n]+)',
        (STACK / "variables.tf").read_text(),
        re.DOTALL,
    )
    assert validation, 'stack: variable "environment" has no validation'
    for env in ENVS:
        assert f'"{env}"' in validation.group("condition")


@pytest.mark.parametrize("env", ENVS)
def test_env_has_a_backend_example_with_its_own_state_key(env: str) -> None:
    example = TF_DIR / "envs" / f"{env}.backend.hcl.example"
    assert example.is_file(), f"envs/{env}.backend.hcl.example is missing"
    assert f'key    = "credit-risk/{env}/terraform.tfstate"' in example.read_text()


@pytest.mark.parametrize("env", ENVS)
def test_env_tfvars_names_its_own_environment(env: str) -> None:
    assert env_tfvars(env).get("environment") == f'"{env}"'


def test_production_survives_a_zone_outage_and_staging_saves_cost() -> None:
    production, staging = env_tfvars("production"), env_tfvars("staging")
    assert production["single_nat_gateway"] == "false"
    assert production["mlflow_db_multi_az"] == "true"
    assert staging["single_nat_gateway"] == "true"
    assert staging["mlflow_db_multi_az"] == "false"
    assert production["vpc_cidr_block"] != staging["vpc_cidr_block"]


@pytest.mark.parametrize("env", ENVS)
def test_env_tfvars_sets_only_declared_variables(env: str) -> None:
    undeclared = set(env_tfvars(env)) - set(stack_variables())
    assert not undeclared, f"envs/{env}.tfvars sets undeclared {sorted(undeclared)}"


@pytest.mark.parametrize("env", ENVS)
def test_env_tfvars_and_workflow_supply_every_required_variable(env: str) -> None:
    # Without a default, a variable must come from the env's tfvars or from the workflow's
    # TF_VAR_*; never both, as -var-file would silently override the workflow's value.
    tfvars = set(env_tfvars(env))
    required = {name for name, b in stack_variables().items() if "default" not in b.attributes}
    missing = required - tfvars - WORKFLOW_TF_VARS
    assert not missing, f"neither envs/{env}.tfvars nor terraform.yml sets {sorted(missing)}"
    assert not tfvars & WORKFLOW_TF_VARS, f"envs/{env}.tfvars overrides the workflow's TF_VAR_*"


def test_stack_exposes_the_workflow_outputs() -> None:
    outputs = {b.labels[0] for b in blocks_of(STACK / "outputs.tf") if b.type == "output"}
    missing = WORKFLOW_OUTPUTS - outputs
    assert not missing, f"stack lacks outputs {sorted(missing)}"


def test_stack_sets_default_tags() -> None:
    providers = blocks_of(STACK / "providers.tf")
    aws = [b for b in providers if b.type == "provider" and b.labels == ["aws"]]
    assert aws, "stack: no provider aws block"
    assert "default_tags" in aws[0].nested, "stack: provider aws without default_tags"
    text = (STACK / "providers.tf").read_text()
    for tag in ("project", "environment", "managed-by"):
        assert re.search(rf"\b{tag}\s*=", text), f"stack: default tag {tag} missing"
    assert re.search(r"\benvironment\s*=\s*var\.environment\b", text)
