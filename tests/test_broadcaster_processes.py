"""Broadcaster processes sharing a port: never with another system's, never restarted
forever, stopped together."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import urllib.request

from websockets.sync.client import connect

from desks.backoff import Backoff
from desks.settings import Settings
from launcher.broadcasters import QUICK_DEATHS, BroadcasterProcesses
from tests.broadcaster.test_hostile_peers import Log
from tests.conftest import free_port, wait_until
from tests.faults.test_broadcaster_kill import children, gone
from tests.processes import desks_env, spawned


def test_a_second_group_cannot_join_a_port_another_system_holds(tmp_path):
    # Any process of the user may join a SO_REUSEPORT group: two systems on one port would
    # have shared their clients, each getting the other's events (found in review).
    port = str(free_port())
    first_env = desks_env(DESKS_EMBEDDED_PATH=str(tmp_path / "first.sqlite3"))
    second_env = desks_env(DESKS_EMBEDDED_PATH=str(tmp_path / "second.sqlite3"))
    command = ("broadcaster", "--port", port, "--processes", "2")
    with spawned(tmp_path / "first.log", first_env, *command):
        log = (tmp_path / "first.log").read_text
        wait_until(lambda: log().count("msg=listening") == 2, 30)
        second = subprocess.run(
            [sys.executable, "-m", "launcher.cli", *command],
            env=second_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        up = subprocess.run(
            [sys.executable, "-m", "launcher.cli", "up", "--port", "0", "--ws-port", port]
            + ["--broadcasters", "2"],
            env=second_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert up.returncode == 1
        assert "cannot start" in up.stderr


class Dying(BroadcasterProcesses):
    """Children that die at once, as they do when something they all need is wrong."""

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])


def test_children_that_keep_dying_at_start_are_given_up_on_and_said(caplog):
    crashed = threading.Event()
    processes = Dying(
        Settings(),
        "127.0.0.1",
        0,
        1,
        on_crash=crashed.set,
        backoff=lambda: Backoff(initial=0.01, cap=0.02),
    )
    processes.start()
    try:
        assert crashed.wait(30)
    finally:
        processes.stop()
    died = [r for r in caplog.records if r.getMessage().startswith("broadcaster process died")]
    assert len(died) == QUICK_DEATHS - 1
    assert any("giving up" in r.getMessage() for r in caplog.records)


def test_ctrl_c_stops_the_group_without_taking_a_child_for_dead(tmp_path):
    env = desks_env(DESKS_EMBEDDED_PATH=str(tmp_path / "store.sqlite3"))
    command = [sys.executable, "-m", "launcher.cli", "broadcaster", "--port", "0"]
    with (tmp_path / "group.log").open("w") as log:
        # Its own session, as a terminal's foreground job is: Ctrl-C signals the whole group.
        parent = subprocess.Popen(
            [*command, "--processes", "2"], stderr=log, env=env, start_new_session=True
        )
    try:
        text = (tmp_path / "group.log").read_text
        wait_until(lambda: text().count("msg=listening") == 2, 30)
        os.killpg(parent.pid, signal.SIGINT)
        assert parent.wait(15) == 0
        # Only the parent took Ctrl-C; it stopped each child in turn (SIGTERM). Children that
        # took it too would race its stop, and a child gone first was taken for dead.
        assert text().count("signal=SIGINT") == 1
        assert text().count("signal=SIGTERM") == 2
        assert "died" not in text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_metrics_on_the_shared_port_answer_for_every_process(tmp_path):
    # A scrape of the shared port reaches one process, whichever the kernel picks: it must
    # count every process's clients, not its own (10 over 2 processes: each holds ~5).
    port = free_port()
    path = str(tmp_path / "store.sqlite3")
    logged = Log(path)  # a log to follow: clients join the live ones once it is known
    env = desks_env(DESKS_EMBEDDED_PATH=path)
    command = ("broadcaster", "--port", str(port), "--processes", "2")
    with spawned(tmp_path / "group.log", env, *command), contextlib.ExitStack() as clients:
        clients.callback(logged.store.close)
        log = (tmp_path / "group.log").read_text
        wait_until(lambda: log().count('msg="following log"') == 2, 30)
        wait_until(lambda: log().count("msg=listening") == 2, 30)
        for _ in range(10):
            clients.enter_context(connect(f"ws://127.0.0.1:{port}/")).recv(timeout=10)

        def counted() -> list[float]:
            scraped = []
            for _ in range(8):  # new connections each: both processes answer some
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
                    text = answer.read().decode()
                scraped += [
                    float(line.split()[-1])
                    for line in text.splitlines()
                    if line.startswith("desks_broadcaster_clients")
                ]
            return scraped

        wait_until(lambda: set(counted()) == {10.0})  # within a gauge refresh (1 s)


def test_children_stop_when_their_parent_is_killed(tmp_path):
    env = desks_env(DESKS_EMBEDDED_PATH=str(tmp_path / "store.sqlite3"))
    command = ("broadcaster", "--port", "0", "--processes", "2")
    with spawned(tmp_path / "group.log", env, *command) as parent:
        log = (tmp_path / "group.log").read_text
        wait_until(lambda: log().count("msg=listening") == 2, 30)
        serving = children(parent.pid)
        assert len(serving) == 2
        parent.send_signal(signal.SIGKILL)  # no stop() to stop them: they notice by themselves
        parent.wait(10)
        wait_until(lambda: all(gone(pid) for pid in serving), 10)
    assert log().count("parent process gone; stopping") == 2
