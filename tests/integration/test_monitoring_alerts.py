"""Alerting end to end with real processes: `mlops serve` (uvicorn) and `mlflow server`, Debian's
Prometheus, Pushgateway and Alertmanager, and a local Slack-compatible webhook receiver.

- drift: production traffic that moved → the drift job (a real `mlops` process, as the nightly
  runs it) exits 15 and pushes → Prometheus scrapes the Pushgateway → DriftShareHigh fires →
  Alertmanager → the receiver, within a bounded time;
- degraded: the registry stops → serve_registry_up drops to 0 → ServingDegraded → the receiver;
- inhibition: a degraded server silences its own latency alert, not another job's.

Timings are the committed config's with test speeds (rules' `for:` 1 s, scrape and evaluation
every second, Alertmanager groups after 1 s): see tests/fixtures/monitoring_stack.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from ml.registry import Registry
from tests.fixtures.monitoring_stack import (
    query,
    running,
    start_alertmanager,
    start_prometheus,
    start_pushgateway,
)
from tests.fixtures.receiver import webhook_receiver
from tests.integration.conftest_serve import (
    feature_frame,
    fit_tiny,
    log_tiny_version,
    mlflow_server,
    serve_process,
)

ROOT = Path(__file__).resolve().parents[2]
MLOPS = Path(sys.executable).parent / "mlops"
ALERT_DEADLINE_S = 60


def title(body: dict[str, Any]) -> str:
    """The Slack attachment title Alertmanager sends (`[FIRING:1] DriftShareHigh (credit-risk)`)."""
    attachments = body.get("attachments") or [{}]
    return str(attachments[0].get("title", ""))


def log_reference_for(uri: str, version: str, base: Path) -> None:
    """Log a reference sample into the tiny version's run, the way training does for real ones:
    records like the ones it was fitted on, and its own scores on them."""
    from mlflow import MlflowClient

    from ml.monitoring.reference import REFERENCE_DIR, REFERENCE_FILE, build_reference

    model, _ = fit_tiny(0)
    features = feature_frame(2000, seed=0)
    path = base / REFERENCE_FILE
    build_reference(features, model.predict_proba(features)[:, 1]).to_parquet(path)
    client = MlflowClient(uri, registry_uri=uri)
    run_id = client.get_model_version("credit-risk", version).run_id
    client.log_artifact(run_id, str(path), REFERENCE_DIR)


def moved_records(rows: int) -> list[dict[str, float]]:
    frame = feature_frame(rows, seed=11)
    frame["LIMIT_BAL"] *= 4
    frame["AGE"] = (frame["AGE"] + 15).clip(upper=100)
    for column in ("BILL_AMT1", "BILL_AMT2", "BILL_AMT3", "PAY_AMT1", "PAY_AMT2"):
        frame[column] *= 3
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_drift_breach_and_a_stopped_registry_reach_the_webhook(tmp_path: Path) -> None:
    with webhook_receiver() as receiver, mlflow_server(tmp_path / "mlflow") as registry:
        # Given version 1 in production, with its reference sample, served by `mlops serve`
        version = log_tiny_version(registry.uri, seed=0)
        Registry(registry.uri).set_alias("credit-risk", "production", int(version))
        log_reference_for(registry.uri, version, tmp_path)
        serve_log = tmp_path / "serve.log"
        env = {
            "MLFLOW_TRACKING_URI": registry.uri,
            "SERVE_POLL_INTERVAL": "0.5",
            "SERVE_REGISTRY_TIMEOUT": "1",
            "SERVE_LOG_PREDICTIONS": "true",
        }
        with serve_process(env, serve_log) as api:
            pushgateway = start_pushgateway(tmp_path)
            alertmanager = start_alertmanager(tmp_path, receiver.url)
            prometheus = start_prometheus(
                tmp_path, api=api, pushgateway=pushgateway.url, alertmanager=alertmanager.url
            )
            with running(pushgateway, alertmanager, prometheus):
                # And production traffic whose inputs moved
                records = moved_records(800)
                for start in range(0, len(records), 100):
                    response = httpx.post(
                        f"{api}/predict", json={"records": records[start : start + 100]}, timeout=30
                    )
                    assert response.status_code == 200, response.text

                # When the drift job runs on the server's log, pushing to the Pushgateway
                started = time.monotonic()
                drift = subprocess.run(
                    [str(MLOPS), "monitor", "drift", "--logs", str(serve_log),
                     "--pushgateway", pushgateway.url, "--out", str(tmp_path / "out")],
                    cwd=ROOT, env={**_env(), "MLFLOW_TRACKING_URI": registry.uri},
                    capture_output=True, text=True, timeout=600, check=False,
                )  # fmt: skip
                finished = time.monotonic()

                # Then it exits 15 naming the moved features, and the alert reaches the webhook
                assert drift.returncode == 15, drift.stdout + drift.stderr
                assert "LIMIT_BAL" in drift.stderr
                assert "pushed the figures to the Pushgateway" in drift.stdout
                alert = receiver.wait_for(
                    lambda b: "DriftShareHigh" in title(b), timeout=ALERT_DEADLINE_S
                )
                assert alert is not None, _debug(receiver.received, prometheus.log)
                assert title(alert).startswith("[FIRING:1] DriftShareHigh (credit-risk)")
                assert f"credit-risk v{version}:" in alert["attachments"][0]["text"]
                print(
                    f"drift job took {finished - started:.1f} s; the alert was delivered "
                    f"{time.monotonic() - started:.1f} s after it started"
                )
                # And the server's own metrics were scraped: 800 scores for version 1
                scored = query(prometheus.url, f'serve_score_count{{version="{version}"}}')
                assert scored
                assert scored[0]["value"][1] == "800"
                approvals = query(prometheus.url, "serve_approvals_total")
                assert approvals

                # When the registry stops
                registry.stop()
                stopped = time.monotonic()
                # Then the server reports degraded and the alert reaches the webhook
                degraded = receiver.wait_for(
                    lambda b: "ServingDegraded" in title(b), timeout=ALERT_DEADLINE_S
                )
                assert degraded is not None, _debug(receiver.received, prometheus.log)
                assert "cannot reach the registry" in degraded["attachments"][0]["text"]
                print(f"degraded alert delivered {time.monotonic() - stopped:.1f} s after the stop")
                health = httpx.get(f"{api}/health", timeout=5).json()
                assert health["status"] == "degraded"


def test_a_degraded_server_silences_its_latency_alert(tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        alertmanager = start_alertmanager(tmp_path, receiver.url)
        with running(alertmanager):
            # Given a degraded server that is also slow, and another job that is only slow
            alerts = [
                {"labels": {"alertname": "ServingDegraded", "job": "credit-risk-api",
                            "instance": "a:8000", "severity": "warning"},
                 "annotations": {"summary": "degraded", "description": "registry away"}},
                {"labels": {"alertname": "ServingHighLatencyP99", "job": "credit-risk-api",
                            "severity": "warning"},
                 "annotations": {"summary": "slow api", "description": "p99"}},
                {"labels": {"alertname": "ServingHighLatencyP99", "job": "other-api",
                            "severity": "warning"},
                 "annotations": {"summary": "slow other", "description": "p99"}},
            ]  # fmt: skip
            request = urllib.request.Request(
                f"{alertmanager.url}/api/v2/alerts",
                data=json.dumps(alerts).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            urllib.request.urlopen(request, timeout=5).read()
            # Then the degraded alert and the other job's latency alert arrive
            assert receiver.wait_for(lambda b: "ServingDegraded" in title(b), timeout=30)
            other = receiver.wait_for(lambda b: "slow other" in json.dumps(b), timeout=30)
            assert other is not None
            # And the degraded server's own latency alert never does
            time.sleep(3)
            texts = [json.dumps(b) for b in receiver.received]
            assert not any("slow api" in t for t in texts), texts


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}


def _debug(received: list[dict[str, Any]], log: Path) -> str:
    return f"received: {[title(b) for b in received]}\nprometheus:\n{log.read_text()[-2000:]}"


def test_a_fairness_breach_in_the_served_decisions_fires_its_alert(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from tests.fixtures.prediction_logs import as_records, prediction_lines

    # Given a day of served decisions where women are approved far less often than men
    frame = pd.read_csv(ROOT / "data" / "uci_credit_card.csv.gz").head(3000)
    rng = np.random.default_rng(3)
    women = (frame["SEX"] == 2).to_numpy()
    scores = np.where(women, rng.uniform(0.3, 0.9, len(frame)), rng.uniform(0.0, 0.6, len(frame)))
    logs = tmp_path / "api.log"
    logs.write_text(prediction_lines(as_records(frame), scores.tolist(), per_request=20))
    with webhook_receiver() as receiver:
        pushgateway = start_pushgateway(tmp_path)
        alertmanager = start_alertmanager(tmp_path, receiver.url)
        prometheus = start_prometheus(
            tmp_path, api=None, pushgateway=pushgateway.url, alertmanager=alertmanager.url
        )
        with running(pushgateway, alertmanager, prometheus):
            # When the fairness job runs (a real `mlops` process, as the monitoring DAG runs it)
            done = subprocess.run(
                [str(MLOPS), "monitor", "fairness", "--logs", str(logs), "--window", "24h",
                 "--end", str(time.time() + 60), "--pushgateway", pushgateway.url],
                cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            # Then it exits 15 naming the group, having pushed the figures
            assert done.returncode == 15, done.stdout + done.stderr
            assert "SEX=2" in done.stdout + done.stderr
            # And Prometheus fires ApprovalRatioBelowFourFifths for SEX=2, and Alertmanager
            # delivers it
            deadline = time.monotonic() + ALERT_DEADLINE_S
            firing: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not firing:
                firing = query(
                    prometheus.url,
                    'ALERTS{alertname="ApprovalRatioBelowFourFifths",alertstate="firing"}',
                )
                time.sleep(0.5)
            fired = {(a["metric"]["attribute"], a["metric"]["group"]) for a in firing}
            assert ("SEX", "2") in fired, _debug(receiver.received, tmp_path / "prometheus.log")
            assert ("SEX", "1") not in fired  # the reference group is never compared with itself
            sent = receiver.wait_for(
                lambda b: "ApprovalRatioBelowFourFifths" in title(b), timeout=ALERT_DEADLINE_S
            )
            assert sent is not None, _debug(receiver.received, tmp_path / "prometheus.log")
