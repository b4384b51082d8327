"""What bootstrap does, as calls: each printed as it happens (or, with --dry-run, only
printed), one line a person could run or read. Secret values are never rendered."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Log = Callable[[str], None]


@dataclass(frozen=True)
class Secret:
    """A secret value and where it comes from; its repr and every rendering hide the value."""

    source: str
    value: str | None = field(default=None, repr=False)

    def shown(self) -> str:
        """What a log line says instead of the value."""
        return f"<{self.source}, not shown>"


@dataclass(frozen=True)
class Call:
    """One operation bootstrap makes, rendered as one line a person could run or read."""

    system: Literal["aws", "github", "mlflow", "file"]
    method: str
    target: str
    body: Mapping[str, Any] | None = None
    secret: Secret | None = None
    secret_field: str | None = None
    note: str = ""

    def render(self) -> str:
        """The call as one line; secret values replaced by where they come from."""
        body = dict(self.body or {})
        if self.secret is not None and self.secret_field:
            body[self.secret_field] = self.secret.shown()
        if self.system == "github" and self.method == "SECRET":
            line = f"gh secret set {self.target}"
            assert self.secret is not None
            line += f"  # value: {self.secret.shown()} (read from stdin)"
        elif self.system == "github":
            line = f"gh api --method {self.method} {self.target}"
            if body:
                line += f" --input - <<< {shlex.quote(json.dumps(body, sort_keys=True))}"
        elif self.system == "aws":
            args = ", ".join(f"{k}={v!r}" for k, v in body.items())
            line = f"{self.target}.{self.method}({args})"
        elif self.system == "mlflow":
            line = f"{self.method} {self.target}"
            if body:
                line += f" {json.dumps(body, sort_keys=True)}"
        else:
            line = f"{self.method} {self.target}"
        return f"{line}  # {self.note}" if self.note and self.method != "SECRET" else line


class Recorder:
    """Calls made so far, printed as they happen."""

    def __init__(self, log: Log, dry_run: bool) -> None:
        self.calls: list[Call] = []
        self.log = log
        self.dry_run = dry_run

    def record(self, call: Call) -> None:
        """Keep and print one call."""
        self.calls.append(call)
        self.log(("[dry-run] " if self.dry_run else "") + call.render())
