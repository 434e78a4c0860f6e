"""Serving a fake provider with uvicorn on 127.0.0.1 (the fakes' and the tests' one way to do it)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass(slots=True)
class Served:
    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket
    port: int


async def serve_on_loopback(app: Any, port: int = 0, *, grace: int = 1) -> Served:
    """Start `app` on 127.0.0.1:`port` (0: a free port; a given port is reused, e.g. after `down()`), and return
    once uvicorn is accepting connections. Stop it with `server.should_exit = True` and await `task`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=grace)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during start-up")
        await asyncio.sleep(0.005)
    return Served(server, task, sock, sock.getsockname()[1])
