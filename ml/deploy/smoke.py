"""The mandatory smoke test: the service answers, and answers as the release it should run.

For the API: `/ready` is 200 (a model is loaded and warmed) and `/metadata` names the release's
model version and git SHA (the image's `SERVE_GIT_COMMIT`), so a task still running the old image
or following the wrong alias fails it. For the MLflow service: `/health` is 200 (MLflow's
server exposes no build identity, so the image itself is checked through the task definition).
Retries until a deadline, because a load balancer keeps sending some requests to draining tasks.
The requests themselves are `ml.adapters.http_probe`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ml.adapters.http_probe import UnreachableError, get_json
from ml.errors import ConfigError, SmokeTestError


@dataclass(frozen=True)
class Expected:
    """What the service must report: model name and version, and the image's git SHA."""

    model: str
    version: int
    git_sha: str | None  # None: unknown (a state from before releases existed)

    def describe(self) -> str:
        """`credit-risk v3 @ 1a2b3c4d5e6f`."""
        sha = f" @ {self.git_sha[:12]}" if self.git_sha else ""
        return f"{self.model} v{self.version}{sha}"


def _base(url: str) -> str:
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"smoke-test URL must be http(s)://...: {url!r}")
    return base


def check_serve_once(base: str, expected: Expected, timeout: float = 10.0) -> str | None:
    """One attempt; None when the service passes, else what is wrong (one line)."""
    status, _ = get_json(f"{base}/ready", timeout)
    if status != 200:
        return f"/ready answered {status}"
    status, meta = get_json(f"{base}/metadata", timeout)
    if status != 200 or not isinstance(meta, dict):
        return f"/metadata answered {status}"
    model = meta.get("model") or {}
    deployment = meta.get("deployment") or {}
    served = f"{model.get('name')} v{model.get('version')}"
    if str(model.get("name")) != expected.model or str(model.get("version")) != str(
        expected.version
    ):
        return f"/metadata serves {served}, expected {expected.model} v{expected.version}"
    commit = str(deployment.get("git_commit"))
    if expected.git_sha and commit != expected.git_sha:
        return f"/metadata names git commit {commit}, expected {expected.git_sha} (another image)"
    return None


def _retry(
    probe: Callable[[], str | None],
    base: str,
    *,
    timeout: float,
    poll_interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    expected: str = "",
) -> None:
    """Call `probe` until it finds nothing wrong or `timeout` runs out (`SmokeTestError` with
    the last problem seen)."""
    deadline = clock() + timeout
    while True:
        try:
            problem = probe()
        except UnreachableError as exc:
            if exc.certificate is not None:  # no retry fixes a certificate
                raise SmokeTestError(
                    f"smoke test of {base}: TLS certificate check failed "
                    f"({exc.certificate}): the URL must be the DNS name its certificate "
                    "names (https://api.<environment>.<domain>, never a load balancer's "
                    "*.elb.amazonaws.com), signed by a CA this machine trusts (SSL_CERT_FILE)"
                ) from None
            problem = f"{base} unreachable: {exc}"
        if problem is None:
            return
        if clock() >= deadline:
            raise SmokeTestError(
                f"smoke test of {base} failed after {timeout:.0f} s: {problem}{expected}"
            )
        sleep(poll_interval)


def smoke_serve(
    url: str,
    expected: Expected,
    *,
    timeout: float,
    poll_interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Retry `check_serve_once` until it passes or `timeout` runs out (`SmokeTestError`)."""
    base = _base(url)
    _retry(
        lambda: check_serve_once(base, expected), base, timeout=timeout,
        poll_interval=poll_interval, clock=clock, sleep=sleep,
        expected=f" (expected {expected.describe()})",
    )  # fmt: skip


def smoke_health(url: str, *, timeout: float, poll_interval: float = 2.0) -> None:
    """Retry until `/health` answers 200 (the MLflow service); `SmokeTestError` otherwise."""
    base = _base(url)

    def probe() -> str | None:
        status, _ = get_json(f"{base}/health", 10.0)
        return None if status == 200 else f"/health answered {status}"

    _retry(
        probe, base, timeout=timeout, poll_interval=poll_interval, clock=time.monotonic,
        sleep=time.sleep,
    )  # fmt: skip
