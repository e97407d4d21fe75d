"""`desks up` serves the API with gunicorn: its own errors are JSON, idle peers are closed."""

from __future__ import annotations

import json
import socket
import time

import pytest
from gunicorn.config import Config
from gunicorn.workers import gthread

from api.server import IDLE_TIMEOUT_S, REQUEST_READ_TIMEOUT_S, JsonErrorsWorker
from tests.conftest import free_port
from tests.processes import Running


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    running = Running(free_port(), tmp / "up.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.close()


@pytest.fixture
def api(up):
    return up.api.removeprefix("http://").split(":")


def exchange(address, raw: bytes) -> tuple[int, dict]:
    host, port = address
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"Content-Type: application/json" in head, head
    return status, json.loads(body)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
        (
            b"GET / HTTP/1.1\r\nHost: localhost\r\n"
            + b"".join(b"X-%d: y\r\n" % n for n in range(150))
            + b"\r\n",
            431,
        ),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431),
    ],
)
def test_errors_the_server_produces_itself_are_json(api, raw, status):
    code, body = exchange(api, raw)
    assert code == status
    assert body["code"] == status and body["message"]


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Return how long the server took to close `sock` (failing after `seconds`)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_idle_and_slowly_sending_connections_are_closed(api):
    host, port = api
    idle = socket.create_connection((host, int(port)))
    slow = socket.create_connection((host, int(port)))
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost:")  # then nothing: slowloris
    kept = socket.create_connection((host, int(port)))
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")  # answered, then kept alive
    with idle, slow, kept:
        # Idle: up to gunicorn's 5 s wait in a thread, then the keep-alive timeout.
        assert closed_within(idle, 2 * IDLE_TIMEOUT_S + 3) < 2 * IDLE_TIMEOUT_S + 3
        assert closed_within(slow, REQUEST_READ_TIMEOUT_S + 3) < REQUEST_READ_TIMEOUT_S + 3
        assert closed_within(kept, IDLE_TIMEOUT_S + 3) < IDLE_TIMEOUT_S + 3


def test_stalled_requests_hold_threads_not_the_api(api):
    # Fewer stalled requests than one worker has threads (4): others are served at once. More
    # would queue behind them, for at most REQUEST_READ_TIMEOUT_S each: put a buffering proxy
    # in front of an API that faces the internet (docs/api.md, "Serving").
    host, port = api
    stalled = [socket.create_connection((host, int(port))) for _ in range(3)]
    for sock in stalled:
        sock.sendall(b"POST /api/desks HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
    try:
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        assert exchange(api, request)[0] == 200
        assert time.monotonic() - started < 2
        for sock in stalled:
            assert closed_within(sock, REQUEST_READ_TIMEOUT_S + 3) < REQUEST_READ_TIMEOUT_S + 3
    finally:
        for sock in stalled:
            sock.close()


def chunked_post(address, body: bytes) -> tuple[int, dict]:
    head = (
        b"POST /api/desks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunks = b"".join(
        b"%x\r\n" % len(body[i : i + 4096]) + body[i : i + 4096] + b"\r\n"
        for i in range(0, len(body), 4096)
    )
    return exchange(address, head + chunks + b"0\r\n\r\n")


def count_desks(address) -> int:
    status, desks = exchange(
        address, b"GET /api/desks HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    return len(desks)


def test_a_chunked_body_is_held_to_the_same_64_kib_limit(api):
    before = count_desks(api)
    desk = {"name": "Mesa", "width": 1, "height": 1}
    big = json.dumps({**desk, "pad": "x" * 200_000}).encode()
    status, body = chunked_post(api, big)
    assert (status, body["code"]) == (413, 413)
    assert count_desks(api) == before
    status, created = chunked_post(api, json.dumps(desk).encode())
    assert status == 201 and created["name"] == "Mesa"


def test_what_gunicorn_logs_of_a_bad_request_is_escaped(up, api):
    status, _ = exchange(api, b"GET /x\x1b[2J\rlevel=error HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 400
    text = up.log.read_bytes()
    assert b"logger=gunicorn.error" in text
    assert b"\x1b" not in text and b"\r" not in text


def test_a_new_connection_with_nothing_to_read_waits_in_the_poller_not_in_a_thread():
    # gunicorn would block the thread up to 5 s for the first bytes; ours does not wait at all.
    quiet, peer = socket.socketpair()
    try:
        conn = gthread.TConn(Config(), quiet, ("127.0.0.1", 1), ("127.0.0.1", 2))
        waits = []
        original = conn.wait_for_data
        conn.wait_for_data = lambda timeout: waits.append(timeout) or original(timeout)
        worker = JsonErrorsWorker.__new__(JsonErrorsWorker)  # handle() needs no process state
        assert worker.handle(conn) is gthread._DEFER
        assert waits == [0]
    finally:
        quiet.close()
        peer.close()
