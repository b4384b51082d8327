"""Run the service under uvicorn with the settings' workers, host and port.

uvicorn with `workers > 1` hands each worker the parent's listening socket, and the accepted
sockets lack TCP_NODELAY (uvicorn#3149): Nagle + delayed ACK add ~44 ms to every request after
the first on a kept-alive connection. `NoDelayHttpToolsProtocol` sets the option on every
accepted connection, in every worker, whatever the event loop does.

On SIGTERM uvicorn closes the listening socket (no new connection is accepted), lets in-flight
requests finish while closing idle keep-alive connections, and cancels whatever still runs after
SERVE_DRAIN_SECONDS; then the lifespan stops the watcher (its thread is abandoned after a second)
and the scoring threads. So the process exits within the drain time plus about a second
(tests/integration/test_serve_drain.py, on a real uvicorn process).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serve.settings import ServeSettings


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Disable Nagle on a TCP transport (no-op for Unix sockets)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol that sets TCP_NODELAY on each accepted connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


def run(settings: ServeSettings | None = None) -> None:
    """Start uvicorn (blocking). The app is built per worker by `serve.app:factory`."""
    import uvicorn

    settings = settings or ServeSettings()
    uvicorn.run(
        "serve.app:factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=NoDelayHttpToolsProtocol if settings.tcp_nodelay else "httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=settings.drain_seconds,
    )
