"""Where bootstrap finds the values it sets: terraform outputs per root, the Secrets Manager
secrets those outputs name, and the caller's environment (values only a person has)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.errors import ConfigError, one_line
from ml.platform.bootstrap.recorder import Log, Recorder
from ml.platform.config import Entry, PlatformConfig

SecretReader = Callable[[str], Mapping[str, Any]]


@dataclass
class Values:
    """Where bootstrap finds values: terraform outputs per root, Secrets Manager secrets those
    outputs name (`read_secret`, real runs only), and the caller's environment."""

    outputs: dict[str, dict[str, Any]]
    environ: Mapping[str, str]
    bucket: str
    dry_run: bool
    read_secret: SecretReader | None = None
    missing: list[str] = field(default_factory=list)
    _secrets: dict[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    def _human(self, name: str) -> str | None:
        if self.environ.get(name):
            return self.environ[name]
        path = self.environ.get(f"{name}_FILE")
        if path:
            try:
                return Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE={path}: cannot read it ({exc.strerror})") from exc
        return None

    def output(self, root: str, name: str) -> Any:
        """The value of one terraform output of `root`, or None."""
        found = self.outputs.get(root, {}).get(name)
        return None if found is None else found.get("value")

    def secret(self, arn: str, key: str, where: str) -> str:
        """One key of a Secrets Manager secret's JSON value (each secret read once)."""
        if self.read_secret is None:
            raise ConfigError(f"{where}: no AWS session to read Secrets Manager with")
        if arn not in self._secrets:
            self._secrets[arn] = self.read_secret(arn)
        value = self._secrets[arn].get(key)
        if not value:
            raise ConfigError(
                f"{where}: the secret has no `{key}` yet (seed it: make tf-seed-secrets ROOT=...)"
            )
        return str(value)

    def of(self, config: PlatformConfig, entry: Entry, scope: str) -> tuple[str | None, str]:
        """(value or None, where it comes from) for a terraform / state-bucket / human entry.

        A dry run never reads Secrets Manager: such a value is a placeholder (secrets are
        never shown anyway).
        """
        src = entry.source
        if src.kind == "terraform":
            root = config.root_of(entry, scope)
            assert root is not None
            label = entry.output_name()
            value = self.output(root, label)
            if src.key:
                key = scope if src.key == "environment" else src.key
                label += f"[{key}]"
                value = value.get(key) if isinstance(value, dict) else None
            where = f"terraform output {label} of {root}"
            if src.secret_key:
                where = f"key {src.secret_key} of the Secrets Manager secret in {where}"
                if value is not None:
                    value = (
                        "<read at run time>"
                        if self.dry_run
                        else self.secret(str(value), src.secret_key, where)
                    )
            if value is not None and not isinstance(value, str):
                value = json.dumps(value)
            return value, where
        if src.what == "state-bucket":
            return self.bucket, "the state bucket"
        how = f"{entry.name} or {entry.name}_FILE in your environment ({src.how})"
        return self._human(entry.name), how


def secrets_manager_reader(session: Any, region: str, recorder: Recorder) -> SecretReader:
    """Reads a secret's JSON value; each read is logged (the value never is)."""
    client = session.client("secretsmanager", region_name=region)

    def read(arn: str) -> Mapping[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        recorder.log(f"secretsmanager.get_secret_value(SecretId={arn!r})")
        try:
            text = client.get_secret_value(SecretId=arn).get("SecretString") or "{}"
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"secret {arn}: {one_line(str(exc))}") from exc
        return _json_object(text, f"secret {arn}", "a JSON object")

    return read


def load_outputs(
    roots: Iterable[str], outputs_dir: Path | None, dry_run: bool, log: Log
) -> dict[str, dict[str, Any]]:
    """`terraform output -json` of each root: from OUTPUTS_DIR/<root>.json, else `make tf-output`.

    A dry run without --outputs-dir reads nothing (placeholders); a real run fails on a root
    whose outputs cannot be read.
    """
    result: dict[str, dict[str, Any]] = {}
    for root in roots:
        if outputs_dir is not None:
            path = outputs_dir / f"{root}.json"
            if path.exists():
                result[root] = _parse_outputs(path.read_text(), str(path))
            elif not dry_run:
                raise ConfigError(f"{path} not found: `make -s tf-output ROOT={root} > {path}`")
            continue
        if dry_run:
            continue
        log(f"reading terraform outputs of {root}: make -s tf-output ROOT={root}")
        done = subprocess.run(
            ["make", "-s", "--no-print-directory", "tf-output", f"ROOT={root}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise ConfigError(
                f"terraform outputs of {root} unavailable ({one_line(done.stderr)}): apply the "
                f"root first, or pass --outputs-dir with {root}.json from `terraform output -json`"
            )
        result[root] = _parse_outputs(done.stdout, f"terraform output of {root}")
    return result


def _parse_outputs(text: str, where: str) -> dict[str, Any]:
    return _json_object(text, where, "the JSON of `terraform output -json`")


def _json_object(text: str, where: str, expected: str) -> dict[str, Any]:
    """`text` parsed as a JSON object, or a ConfigError naming `where` and what was expected."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not {expected} ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not {expected}")
    return doc
