"""A listening socket per uvicorn worker slot: when the arbiter binds them, which slot a new
worker takes, and the kernel spreading connections over them."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.sock import TCPSocket, create_sockets

from herd_runtime.spreading import free_slot, slot_listeners, spreads_connections

ADDRESS = ("0.0.0.0", 8000)


@pytest.mark.parametrize(
    ("asgi", "workers", "addresses", "inherited", "spreads"),
    [
        (True, 2, [ADDRESS], False, True),
        (True, 1, [ADDRESS], False, False),  # nobody to share with
        (False, 2, [ADDRESS], False, False),  # gthread, sync, gevent
        (True, 2, [ADDRESS, "/run/app.sock"], False, False),
        (True, 2, [ADDRESS, 3], False, False),  # --bind fd://3
        (True, 2, [ADDRESS], True, False),  # systemd's sockets, a re-exec's
    ],
)
def test_only_uvicorn_workers_on_their_own_tcp_sockets_get_one_each(
    asgi: bool, workers: int, addresses: list[object], inherited: bool, spreads: bool
) -> None:
    assert spreads_connections(asgi, workers, addresses, inherited) is spreads


@pytest.mark.parametrize(
    ("taken", "slot"),
    [
        ([], 0),
        ([0], 1),
        ([1], 0),  # the replacement of the worker in slot 0
        ([0, 1], 0),  # SIGHUP forks new workers while the old ones run: one per slot
        ([0, 1, 0], 1),
    ],
)
def test_a_new_worker_takes_the_slot_fewest_workers_hold(taken: list[int], slot: int) -> None:
    assert free_slot(taken, 2) == slot


@pytest.fixture
def cfg() -> Config:
    config = Config()
    config.set("bind", ["127.0.0.1:0"])
    return config


@pytest.fixture
def slots(cfg: Config) -> Iterator[list[list[TCPSocket]]]:
    log = logging.getLogger("test")
    listeners = create_sockets(cfg, log)
    port = listeners[0].getsockname()[1]
    made = slot_listeners(listeners, 2, cfg, log)
    assert listeners[0].sock is None  # gunicorn's own socket, closed
    assert [[s.getsockname()[1] for s in slot] for slot in made] == [[port], [port]]
    yield made
    for slot in made:
        for listener in slot:
            listener.close()


def test_the_kernel_spreads_connections_over_the_slots(slots: list[list[TCPSocket]]) -> None:
    port = slots[0][0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    try:
        accepted = [_accept_all(slot[0].sock) for slot in slots]
    finally:
        for client in clients:
            client.close()
    assert sum(accepted) == 32
    assert min(accepted) > 0, accepted  # all 32 hashed to one socket: 2 ** -31


def _accept_all(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1
