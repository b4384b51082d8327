"""Development only: real services for tests and benchmarks: PostgreSQL (initdb + pg_ctl),
`mlflow server` and moto in server mode (AWS on 127.0.0.1). Never used at run time.

Lives outside the shipped package (and outside tests/, which nothing else imports) so that the
benchmarks in scripts/ and the tests share one starter. Every starter fails loudly
(`ServiceError`) when its service cannot start: a test that needs a real registry must never be
skipped silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def _pg_bin() -> Path:
    """PG_BIN, else the newest /usr/lib/postgresql/<major>/bin (15 here, 16 on GitHub runners)."""
    if "PG_BIN" in os.environ:
        return Path(os.environ["PG_BIN"])
    majors = [p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()]
    found = sorted(majors, key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


class ServiceError(RuntimeError):
    """A service did not start; the message carries the end of its log."""


PG_BIN = _pg_bin()
MLFLOW = Path(sys.executable).parent / "mlflow"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass(frozen=True)
class Postgres:
    """A running throwaway cluster."""

    port: int
    data: Path

    def uri(self, db: str = "mlflow") -> str:
        """SQLAlchemy URI with the psycopg2 driver (psycopg 3 breaks archive_existing_versions)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{db}"


def start_postgres() -> Postgres:
    """initdb + pg_ctl start into a fresh temp dir; create database `mlflow`.

    The cluster lives in its own `mkdtemp` directory (not pytest's 0700 tmp tree) because, when
    the tests run as root, the server runs as the `postgres` user and must reach its data dir.
    """
    if not (PG_BIN / "initdb").exists():
        raise ServiceError(f"PostgreSQL binaries not found in {PG_BIN} (set PG_BIN)")
    base = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    init = subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        raise ServiceError(f"initdb failed: {init.stderr}")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(base / "pg.log"),
                "-w",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        log = (base / "pg.log").read_text() if (base / "pg.log").exists() else ""
        raise ServiceError(f"pg_ctl start failed: {start.stderr}\n{log}")
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE mlflow")
    conn.close()
    return Postgres(port=port, data=data)


def stop_postgres(pg: Postgres) -> None:
    """pg_ctl stop -m immediate."""
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "stop"]),
        capture_output=True,
    )
    shutil.rmtree(pg.data.parent, ignore_errors=True)


@dataclass
class MlflowServer:
    """A running `mlflow server`; `uri` is what MLFLOW_TRACKING_URI should say."""

    uri: str
    process: subprocess.Popen[bytes]
    log: Path


def start_mlflow_server(
    backend_uri: str,
    base: Path,
    timeout_s: float = 90,
    workers: int = 1,
    port: int | None = None,
) -> MlflowServer:
    """Start `mlflow server` on 127.0.0.1 (`port`, or a free one); wait for /health or fail loudly.

    One worker by default: tests run several servers on two cores. (MLflow's own default is 4.)
    Starting again with the same `base` and `port` restarts the same registry.
    """
    base.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = base / "mlflow-server.log"
    cmd = [
        str(MLFLOW),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        (base / "artifacts").as_uri(),
    ]
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-4000:]
            raise ServiceError(f"mlflow server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return MlflowServer(uri, proc, log)
        except OSError:
            time.sleep(0.3)
    stop_mlflow_server(MlflowServer(uri, proc, log))
    tail = log.read_text()[-4000:]
    raise ServiceError(f"mlflow server did not answer /health in {timeout_s}s:\n{tail}")


def stop_mlflow_server(server: MlflowServer) -> None:
    """Terminate the server's process group (uvicorn/gunicorn workers included)."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, 15)
            server.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.process.pid, 9)


@dataclass
class MotoServer:
    """A running `moto_server`; `url` is the endpoint for every AWS client."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_moto_server(log: Path, timeout_s: float = 30) -> MotoServer:
    """`moto_server` on a free 127.0.0.1 port; wait for /moto-api/ or fail loudly."""
    server = Path(sys.executable).with_name("moto_server")
    if not server.is_file():
        raise ServiceError(f"moto_server not found next to {sys.executable}: run `make install`")
    url = f"http://127.0.0.1:{free_port()}"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    moto = MotoServer(url, proc, log)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            tail = log.read_text()[-4000:]
            raise ServiceError(f"moto_server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310
                return moto
        except OSError:
            if time.monotonic() > deadline:
                stop_moto_server(moto)
                tail = log.read_text()[-4000:]
                raise ServiceError(
                    f"moto_server did not answer in {timeout_s} s:\n{tail}"
                ) from None
            time.sleep(0.2)


def stop_moto_server(moto: MotoServer) -> None:
    """Terminate, then kill if it lingers."""
    moto.process.terminate()
    try:
        moto.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        moto.process.kill()
        moto.process.wait()


@dataclass
class RedisServer:
    """A running `redis-server` (no persistence) in its own folder; `url` for every client."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"


def start_redis(folder: Path, port: int | None = None, timeout_s: float = 20) -> RedisServer:
    """Debian's `redis-server --port N --save ""` in `folder` (restartable on the same port);
    waits for PING or fails loudly with the end of its log."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server not found: run scripts/system_deps.sh (apt redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = folder / "redis.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(folder), "--maxmemory-policy", "noeviction"],
            stdout=fh, stderr=subprocess.STDOUT, cwd=folder,
        )  # fmt: skip
    server = RedisServer(port, folder, proc)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"redis-server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_redis(server)
            raise ServiceError(f"redis-server did not answer in {timeout_s} s:\n{log.read_text()}")
        time.sleep(0.05)


def stop_redis(server: RedisServer, kill: bool = False) -> None:
    """Stop it (SIGKILL with `kill`: a crash, as the outage tests want)."""
    if server.process.poll() is None:
        if kill:
            server.process.kill()
        else:
            server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
