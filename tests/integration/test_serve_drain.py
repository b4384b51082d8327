"""SIGTERM on a real uvicorn process: it stops accepting at once, finishes the request in flight,
closes idle keep-alive connections, and exits within SERVE_DRAIN_SECONDS (plus about a second)
even when a client never finishes its request."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest_serve import record, save_tiny_model_dir, serve_subprocess

pytestmark = pytest.mark.timeout(300)

DRAIN_S = 3


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drain")
    (root / "metadata.json").write_text('{"name": "credit-risk", "version": "5"}')
    return save_tiny_model_dir(root / "model", seed=6)


@pytest.fixture
def server(model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {"SERVE_MODEL_PATH": str(model_dir), "SERVE_DRAIN_SECONDS": str(DRAIN_S)}
    with serve_subprocess(env, tmp_path / "serve.log") as running:
        yield running


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _request_head(body: bytes, keep_alive: bool = True) -> bytes:
    return (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + (b"" if keep_alive else b"Connection: close\r\n")
        + b"\r\n"
    )


def _read_one(sock: socket.socket) -> bytes:
    """One whole response on a kept-alive connection (headers, then Content-Length bytes)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one response (reads until the connection closes)."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_in_flight_request_finishes_new_connections_are_refused_and_it_exits(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = server
    address = _address(url)
    body = json.dumps({"records": [record(i) for i in range(50)]}).encode()
    # An idle keep-alive connection (one request answered, then quiet): must not hold the exit.
    idle = socket.create_connection(address)
    small = json.dumps({"records": [record(0)]}).encode()
    idle.sendall(_request_head(small) + small)
    assert _read_one(idle).startswith(b"HTTP/1.1 200")
    # A request in flight: headers and half of its body sent.
    in_flight = socket.create_connection(address)
    in_flight.sendall(_request_head(body) + body[: len(body) // 2])
    time.sleep(0.5)

    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.5)

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)
    in_flight.sendall(body[len(body) // 2 :])
    status, answer = _read_response(in_flight)
    assert status == 200
    assert len(json.loads(answer)["predictions"]) == 50
    # uvicorn re-raises the SIGTERM it caught once drained: killed by it, after draining.
    assert proc.wait(timeout=DRAIN_S + 5) in (0, -signal.SIGTERM)
    assert time.monotonic() - signalled < DRAIN_S + 1.5
    idle.settimeout(2)
    assert idle.recv(1) == b"", "the idle keep-alive connection was left open"


def test_a_client_that_never_finishes_does_not_hold_the_exit_past_the_drain_time(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = server
    body = json.dumps({"records": [record(1)]}).encode()
    stuck = socket.create_connection(_address(url))
    stuck.sendall(_request_head(body) + body[:10])
    time.sleep(0.5)

    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = proc.wait(timeout=DRAIN_S + 10)
    took = time.monotonic() - signalled

    assert code in (0, -signal.SIGTERM)
    assert DRAIN_S - 0.5 < took < DRAIN_S + 2.5, f"exited after {took:.1f} s"
