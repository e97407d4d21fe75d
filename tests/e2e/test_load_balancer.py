"""The load balancer's configuration, for real: Debian's haproxy in front of two API processes
and two broadcaster processes on one store file.

The configuration is compose's (`loadbalancer/haproxy.cfg`) with only what the machine gives
changed: the replicas' addresses (here 127.0.0.1 ports, there found by DNS) and the ports it
listens on. REST, the dashboard and a WebSocket resume go through it, and a broadcaster is
killed under a client.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from tests.conftest import free_port, wait_until
from tests.e2e.conftest import http
from tests.faults.test_broadcaster_kill import connections_held
from tests.processes import ROOT, desks_env, http_status, spawned

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)
pytestmark = pytest.mark.skipif(
    HAPROXY is None,
    reason="Debian's haproxy is not installed (`make test` installs it when run as root)",
)


def configuration(api: list[int], live: list[int], lb_api: int, lb_live: int, stats: int) -> str:
    """Return compose's haproxy.cfg with these replicas and ports instead of compose's DNS."""
    text = (ROOT / "loadbalancer" / "haproxy.cfg").read_text()
    text = re.sub(r"\nresolvers docker\n(    .*\n)+", "\n", text)
    for theirs, ours in ((8000, lb_api), (8765, lb_live), (8404, stats)):
        assert f"bind :{theirs}\n" in text
        text = text.replace(f"bind :{theirs}\n", f"bind 127.0.0.1:{ours}\n")
    servers = {
        "api": [f"    server api{n} 127.0.0.1:{port}" for n, port in enumerate(api)],
        "broadcaster": [f"    server live{n} 127.0.0.1:{port}" for n, port in enumerate(live)],
    }
    for name, lines in servers.items():
        pattern = rf"    server-template {name} .*\n"
        assert re.search(pattern, text), name
        text = re.sub(pattern, "\n".join(lines) + "\n", text)
    assert "resolvers" not in text and "server-template" not in text
    return text


def servers_up(stats: int) -> set[str]:
    """Return the servers the balancer's health checks hold up (its stats, as CSV)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stats}/stats;csv", timeout=5) as csv:
            rows = [line.split(",") for line in csv.read().decode().splitlines()[1:]]
    except OSError:
        return set()
    return {row[1] for row in rows if len(row) > 17 and row[17] == "UP" and row[1][-1].isdigit()}


def test_rest_the_dashboard_and_a_websocket_resume_go_through_haproxy(tmp_path):
    path = str(tmp_path / "store.sqlite3")
    lb_api, lb_live, stats = free_port(), free_port(), free_port()
    api_ports, live_ports = [free_port(), free_port()], [free_port(), free_port()]
    env = desks_env(
        DESKS_EMBEDDED_PATH=path,
        DESKS_WATCHER_HEALTH_PORT=str(free_port()),
        # As in compose: the page's host, on the broadcaster port the balancer publishes.
        DESKS_BROADCASTER_PORT=str(lb_live),
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(configuration(api_ports, live_ports, lb_api, lb_live, stats))
    with contextlib.ExitStack() as stack:
        stack.enter_context(spawned(tmp_path / "watcher.log", env, "watcher"))
        for n, port in enumerate(api_ports):
            stack.enter_context(
                spawned(
                    tmp_path / f"api{n}.log",
                    env,
                    *("api", "--port", str(port), "--workers", "1", "--threads", "2"),
                )
            )
        broadcasters = [
            stack.enter_context(
                spawned(tmp_path / f"live{n}.log", env, "broadcaster", "--port", str(port))
            )
            for n, port in enumerate(live_ports)
        ]
        with (tmp_path / "haproxy.log").open("w") as out:
            balancer = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=out, stderr=out)
        stack.callback(balancer.wait)
        stack.callback(balancer.terminate)
        api, live = f"http://127.0.0.1:{lb_api}", f"http://127.0.0.1:{lb_live}"
        # Its health checks (on /readyz) take every replica in once it is ready.
        wait_until(lambda: servers_up(stats) == {"api0", "api1", "live0", "live1"}, 60)
        assert http_status(f"{api}/readyz") == http_status(f"{live}/readyz") == 200

        # REST, on both API processes in turn (round robin).
        ids = []
        for n in range(4):
            status, desk = http(
                "POST", f"{api}/api/desks", {"name": f"D{n}", "width": 1, "height": 1}
            )
            assert status == 201
            ids.append(desk["id"])
        status, listed = http("GET", f"{api}/api/desks")
        assert status == 200 and {desk["id"] for desk in listed} == set(ids)
        for n in range(2):
            assert "method=POST" in (tmp_path / f"api{n}.log").read_text()

        # The dashboard: served through the balancer, pointing its live events at it.
        with urllib.request.urlopen(f"{api}/", timeout=10) as page:
            assert page.status == 200
            assert f"ws://127.0.0.1:{lb_live}/" in page.read().decode()

        # A WebSocket through the balancer, from the dashboard's page (its Origin is checked
        # behind the balancer), then the broadcaster behind it killed.
        page = f"http://127.0.0.1:{lb_api}"
        seqs: list[int] = []
        with connect(
            f"ws://127.0.0.1:{lb_live}/?after=0",
            origin=page,  # type: ignore[arg-type]
            open_timeout=10,
        ) as client:
            hello = json.loads(client.recv(timeout=10))
            epoch = hello["epoch"]
            while len(seqs) < 4:
                seqs.append(json.loads(client.recv(timeout=10))["seq"])
            # The one holding the client's connection (a health check may hold one too).
            serving = max(
                broadcasters,
                key=lambda process: connections_held(
                    process.pid, live_ports[broadcasters.index(process)]
                ),
            )
            serving.send_signal(signal.SIGKILL)
            serving.wait(10)
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=10)
        for n in range(4, 6):
            http("POST", f"{api}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
        # Resumed through the balancer, on the broadcaster still alive: no gap, no duplicate.
        deadline = time.monotonic() + 30
        while len(seqs) < 6:
            try:
                url = f"ws://127.0.0.1:{lb_live}/?after={seqs[-1]}&epoch={epoch}"
                with connect(url, origin=page, open_timeout=10) as client:  # type: ignore[arg-type]
                    assert json.loads(client.recv(timeout=10))["epoch"] == epoch
                    while len(seqs) < 6:
                        seqs.append(json.loads(client.recv(timeout=10))["seq"])
            except (ConnectionClosed, InvalidHandshake, OSError):
                # A 503 while the balancer's checks still count the dead one in (up to 4 s).
                assert time.monotonic() < deadline, "never resumed through the balancer"
                time.sleep(0.1)
        assert seqs == [1, 2, 3, 4, 5, 6]
