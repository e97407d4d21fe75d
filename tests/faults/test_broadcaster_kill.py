"""kill -9 of a broadcaster process while its clients read and the log grows: they resume on
the one started in its place (by hand, or by `--processes`), or on another sharing its port,
with no gap and no duplicate."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from tests.broadcaster.test_hostile_peers import Log
from tests.conftest import free_port, wait_until
from tests.e2e.conftest import http
from tests.processes import Running, desks_env, http_status, spawned

TOTAL = 3000
BATCH = 7  # writes of a few events each, as the watcher logs what arrived together


class Resuming:
    """A client that reads every event, reconnecting with after= and epoch= when cut off."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seqs: list[int] = []
        self.epoch: str | None = None
        self.connections = 0

    def run(self, deadline: float) -> None:
        while len(self.seqs) < TOTAL and time.monotonic() < deadline:
            query = f"?after={self.seqs[-1] if self.seqs else 0}"
            query += f"&epoch={self.epoch}" if self.epoch else ""
            try:
                with connect(self.url + query, open_timeout=5) as client:
                    self.connections += 1
                    while len(self.seqs) < TOTAL:
                        message = json.loads(client.recv(timeout=30))
                        if message["type"] == "hello":
                            self.epoch = message["epoch"] or self.epoch
                        elif "seq" in message:
                            self.seqs.append(message["seq"])
                        else:
                            raise AssertionError(f"unexpected {message}")
            except (ConnectionClosed, InvalidHandshake, OSError):
                time.sleep(0.05)  # the port is being taken over: try again shortly


@contextlib.contextmanager
def on_a_store_file(tmp_path: Path):
    """Yield the log on a new store file, the environment of processes on it, a free port and
    an exit stack that closes the store."""
    path = str(tmp_path / "store.sqlite3")
    log = Log(path)
    with contextlib.ExitStack() as stack:
        stack.callback(log.store.close)
        yield log, desks_env(DESKS_EMBEDDED_PATH=path), free_port(), stack


def writer(log: Log, killed: threading.Event) -> threading.Thread:
    """Start writing TOTAL events in small writes: half at once, the rest once `killed` is set
    (while the killed process is gone and its place is being taken)."""

    def write() -> None:
        while log.head < TOTAL:
            if log.head >= TOTAL // 2:
                killed.wait(60)
            log.append(min(BATCH, TOTAL - log.head))

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_kill_9_of_a_broadcaster_loses_and_repeats_nothing(tmp_path):
    with on_a_store_file(tmp_path) as (log, env, port, stack):
        first = stack.enter_context(
            spawned(tmp_path / "first.log", env, "broadcaster", "--port", str(port))
        )
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 30)
        client = Resuming(f"ws://127.0.0.1:{port}/")
        reader = threading.Thread(target=client.run, args=(time.monotonic() + 120,))
        reader.start()

        killed = threading.Event()
        writing = writer(log, killed)
        wait_until(lambda: len(client.seqs) >= TOTAL // 3, 60)
        first.send_signal(signal.SIGKILL)  # mid-stream: its clients are being sent events
        first.wait(10)
        killed.set()
        stack.enter_context(
            spawned(tmp_path / "second.log", env, "broadcaster", "--port", str(port))
        )
        writing.join(60)
        reader.join(130)
        assert client.seqs == list(range(1, TOTAL + 1))
        assert client.connections >= 2  # it did reconnect, to the new process


def children(parent: int) -> set[int]:
    """Return the pids of `parent`'s child processes."""
    found = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


def test_kill_9_of_one_of_several_processes_on_one_port_loses_and_repeats_nothing(tmp_path):
    with on_a_store_file(tmp_path) as (log, env, port, stack):
        parent = stack.enter_context(
            spawned(
                tmp_path / "broadcasters.log",
                env,
                "broadcaster",
                "--port",
                str(port),
                "--processes",
                "2",
            )
        )
        text = (tmp_path / "broadcasters.log").read_text
        for said in ("msg=listening", 'msg="following log"'):
            wait_until(lambda said=said: text().count(said) == 2, 30)  # both processes
        # Twenty clients: the kernel spreads them over both processes (all on one: 2 in 10^6).
        clients = [Resuming(f"ws://127.0.0.1:{port}/") for _ in range(20)]
        readers = [
            threading.Thread(target=client.run, args=(time.monotonic() + 120,))
            for client in clients
        ]
        for reader in readers:
            reader.start()
        wait_until(lambda: all(client.connections for client in clients), 30)
        killed = threading.Event()
        writing = writer(log, killed)
        wait_until(lambda: min(len(client.seqs) for client in clients) >= TOTAL // 3, 60)
        before = children(parent.pid)
        victim = min(before)
        subprocess.run(["kill", "-9", str(victim)], check=True)
        killed.set()
        # Started in its place, as gunicorn replaces a dead worker.
        wait_until(lambda: len(children(parent.pid) - before) == 1, 30)
        writing.join(60)
        for reader in readers:
            reader.join(130)
        for client in clients:
            assert client.seqs == list(range(1, TOTAL + 1))
        moved = sum(1 for client in clients if client.connections >= 2)
        assert 0 < moved < len(clients)  # the victim's clients came back; the others stayed
        assert text().count("broadcaster process died; starting another") == 1
        serving = children(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(10) == 0
        assert all(gone(pid) for pid in serving)  # stopped with it, not left behind


def gone(pid: int) -> bool:
    """Tell whether process `pid` has ended (exited, or a zombie no one has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_desks_up_with_two_broadcasters_serves_every_client_on_either(tmp_path):
    running = Running(free_port(), tmp_path / "up.log", None, "--broadcasters", "2")
    try:
        running.wait_ready()
        up = running.process.pid
        wait_until(lambda: len(children(up)) == 2, 30)  # a broadcaster and the API's gunicorn
        log = running.log.read_text
        wait_until(lambda: log().count('msg="following log"') == 2, 30)
        wait_until(lambda: log().count("msg=listening") == 2, 30)
        with contextlib.ExitStack() as held:
            # Thirty clients: the kernel spreads them over both (all on one: 2 in 10^9).
            clients = [held.enter_context(connect(running.ws)) for _ in range(30)]
            for client in clients:
                assert json.loads(client.recv(timeout=10))["type"] == "hello"
            port = int(running.ws.rsplit(":", 1)[1].strip("/"))
            assert connections_held(up, port) > 0
            (child,) = [pid for pid in children(up) if b"--supervised" in cmdline(pid)]
            assert connections_held(child, port) > 0
            for n in range(5):
                http("POST", f"{running.api}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
            for client in clients:
                seqs = [json.loads(client.recv(timeout=10))["seq"] for _ in range(5)]
                assert seqs == [1, 2, 3, 4, 5]
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(10) == 0
        assert gone(child)
    finally:
        running.close()


def connections_held(pid: int, port: int) -> int:
    """Count the established TCP connections to local `port` whose socket `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = fd.readlink().name
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    held += 1
    return held


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
