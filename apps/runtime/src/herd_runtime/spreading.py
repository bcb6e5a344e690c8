"""One listening socket per uvicorn worker, held by gunicorn's arbiter: the kernel spreads new
connections over the workers, and a worker that drains or exits leaves its queue to its
replacement.

All of gunicorn's workers accept from the one socket the arbiter bound. asyncio accepts up to
`backlog` connections (gunicorn's 2048) each time that socket is ready (bpo-27906), so the first
uvicorn worker to wake took a whole burst and kept every keep-alive connection of it: 96–98 % of
the requests at 2 CPUs (bench/dataplane). With SO_REUSEPORT each worker slot gets a socket of
its own on the same address, and the kernel picks one per connection by its address hash.

The arbiter binds the slots' sockets and keeps them; a worker closes the copies of the other
slots' sockets it inherited. gunicorn's own `--reuse-port` has each worker bind a socket of its
own instead: when a worker closes it (at max_requests, at exit) its unaccepted connections are
reset, and while every worker is between a drain and its replacement, connections are refused.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


def spreads_connections(
    asgi: bool, workers: int, addresses: Sequence[Any], inherited: bool
) -> bool:
    """Only the uvicorn worker needs it (gthread's accepting depends on free threads, sync's on an
    idle process: they share a burst already), only with workers to share with, and only when
    gunicorn bound every socket itself, each to a host and port: a unix socket, or a socket
    handed down (`fd://`, systemd, a re-exec) which another process may hold, stays shared."""
    return asgi and workers > 1 and not inherited and all(isinstance(a, tuple) for a in addresses)


def free_slot(taken: Iterable[int], slots: int) -> int:
    """The slot the fewest live workers hold, the lowest of those: a replacement takes the slot
    its predecessor left. While every slot is held (gunicorn's SIGHUP forks all new workers
    before stopping the old ones; TTIN adds one), a new worker shares the slot of the fewest,
    so each slot keeps a worker once the old ones are gone."""
    held = Counter(taken)
    return min(range(slots), key=lambda slot: (held[slot], slot))


def slot_listeners(listeners: Sequence[Any], slots: int, cfg: Any, log: Any) -> list[list[Any]]:
    """For each of `slots` slots, an SO_REUSEPORT socket on each address `listeners` were bound
    to; `listeners` are closed first, since a socket without SO_REUSEPORT on the port keeps the
    others from binding. Called before the first worker is forked: nobody accepts yet."""
    # The address bound, not the one configured: a port of 0 was given one.
    addresses = [(type(listener), listener.getsockname()) for listener in listeners]
    for listener in listeners:
        listener.close()
    return [
        [_reuseport_listener(kind, address, cfg, log) for kind, address in addresses]
        for _ in range(slots)
    ]


def _reuseport_listener(kind: type, address: Any, cfg: Any, log: Any) -> Any:
    raw = socket.socket(kind.FAMILY, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    raw.bind(address)
    # gunicorn's socket class takes the bound descriptor and listens with --backlog.
    return kind(address, cfg, log, fd=raw.detach())
