"""TCP_NODELAY on accepted connections (uvicorn#3149; `make bench-serve` measures the effect)."""

from __future__ import annotations

import socket
from typing import Any

from serve.server import set_nodelay


class _Transport:
    """Stands in for an asyncio transport: only `get_extra_info("socket")` is used, and the
    socket behind it is real."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


def _nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_nagle_is_turned_off_on_an_accepted_tcp_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            assert _nodelay(accepted) == 0  # accepted sockets start with Nagle on

            set_nodelay(_Transport(accepted))

            assert _nodelay(accepted) != 0


def test_a_unix_socket_is_left_alone() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        set_nodelay(_Transport(left))  # TCP_NODELAY on a Unix socket would raise


def test_a_transport_without_a_socket_is_left_alone() -> None:
    set_nodelay(_Transport(None))  # type: ignore[arg-type]
