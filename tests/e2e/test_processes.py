"""The embedded store shared by real processes: separate components, and a crash of `desks up`."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from websockets.sync.client import connect

from tests.conftest import free_port, wait_until
from tests.e2e.conftest import http
from tests.processes import Running, desks_env, http_status, spawned


def post_desk(api: str, name: str) -> str:
    status, desk = http("POST", f"{api}/api/desks", {"name": name, "width": 100, "height": 50})
    assert status == 201, desk
    return str(desk["id"])


def receive(url: str, count: int, timeout: float = 30) -> tuple[dict, list[dict]]:
    """Connect, return the hello and the next `count` events."""
    with connect(url, open_timeout=10) as client:
        hello = json.loads(client.recv(timeout=timeout))
        return hello, [json.loads(client.recv(timeout=timeout)) for _ in range(count)]


def test_api_workers_watcher_and_broadcaster_as_processes_share_one_store_file(tmp_path):
    api_port, ws_port, health_port = free_port(), free_port(), free_port()
    env = desks_env(
        DESKS_EMBEDDED_PATH=str(tmp_path / "store.sqlite3"),
        DESKS_PUBLISH_TOKEN="process-test-token-0123456789abcdef",
        DESKS_BROADCASTER_URL=f"ws://127.0.0.1:{ws_port}/",
        DESKS_WATCHER_HEALTH_PORT=str(health_port),
    )
    api = f"http://127.0.0.1:{api_port}"
    logs = [tmp_path / f"{name}.log" for name in ("broadcaster", "watcher", "api")]
    with contextlib.ExitStack() as stack:
        stack.enter_context(spawned(logs[0], env, "broadcaster", "--port", str(ws_port)))
        stack.enter_context(spawned(logs[1], env, "watcher"))
        api_args = ("api", "--port", str(api_port), "--workers", "4")
        stack.enter_context(spawned(logs[2], env, *api_args))
        wait_until(lambda: http_status(f"http://127.0.0.1:{ws_port}/healthz") == 200, 30)
        wait_until(lambda: http_status(f"http://127.0.0.1:{health_port}/readyz") == 200, 30)
        wait_until(lambda: http_status(f"{api}/readyz") == 200, 30)

        with ThreadPoolExecutor(8) as pool:
            created = list(pool.map(lambda n: post_desk(api, f"Mesa {n}"), range(120)))
        hello, events = receive(f"ws://127.0.0.1:{ws_port}/?after=0", len(created))

    assert hello["head"] >= 0
    assert [event["seq"] for event in events] == list(range(1, len(created) + 1))
    assert sorted(event["desk_id"] for event in events) == sorted(created)
    for log in logs:
        text = log.read_text()
        assert "locked" not in text and "Traceback" not in text, f"{log.name}:\n{text}"


def test_up_killed_mid_burst_restarts_with_every_acknowledged_write_logged_once(tmp_path):
    store = tmp_path / "store.sqlite3"
    port = free_port()
    # An hour-long lease: the next watcher must see that its killed holder is gone, not wait.
    first = Running(port, tmp_path / "first.log", store, DESKS_LEASE_TTL_SECONDS="3600")
    acknowledged: list[str] = []
    stop = threading.Event()

    def write(writer: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                acknowledged.append(post_desk(first.api, f"W{writer}-{n}"))
            except Exception:  # reset, half a response, refused: never acknowledged
                return

    try:
        first.wait_ready()
        with connect(f"{first.ws}?after=0", open_timeout=10) as listener:
            hello = json.loads(listener.recv(timeout=10))
            writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
            for thread in writers:
                thread.start()
            wait_until(lambda: len(acknowledged) >= 200, 60)
            first.process.kill()  # SIGKILL mid-burst: no shutdown of any kind
            first.process.wait(10)
            stop.set()
            for thread in writers:
                thread.join(30)
            # What the client saw before the crash: its position for resuming.
            seen: list[dict] = []
            with contextlib.suppress(Exception):
                while True:
                    seen.append(json.loads(listener.recv(timeout=1)))
    finally:
        first.close()

    after = seen[-1]["seq"] if seen else 0
    second = Running(port, tmp_path / "second.log", store, DESKS_LEASE_TTL_SECONDS="3600")
    try:
        second.wait_ready()
        desks = all_desks(second.api)
        assert set(acknowledged) <= {desk["id"] for desk in desks}
        wait_until(lambda: log_head(second.api) == len(desks), 30)
        logged = all_events(second.api)
        assert [event["seq"] for event in logged] == list(range(1, len(desks) + 1))
        assert sorted(event["desk_id"] for event in logged) == sorted(d["id"] for d in desks)

        epoch = hello["epoch"]
        resumed_hello, missed = receive(
            f"{second.ws}?after={after}&epoch={epoch}", len(desks) - after
        )
        assert resumed_hello["epoch"] == epoch
        assert [event["seq"] for event in missed] == list(range(after + 1, len(desks) + 1))
        assert all(event["type"] == "desk_created" for event in missed)

        # Resumed where it stands, the client gets the next write: the watcher is active.
        with connect(f"{second.ws}?after={len(desks)}&epoch={epoch}", open_timeout=10) as client:
            assert json.loads(client.recv(timeout=10))["type"] == "hello"
            new = post_desk(second.api, "after the restart")
            event = json.loads(client.recv(timeout=10))
        assert (event["seq"], event["desk_id"]) == (len(desks) + 1, new)
    finally:
        second.close()


def all_desks(api: str) -> list[dict]:
    desks: list[dict] = []
    page = 1
    while True:
        with urllib.request.urlopen(f"{api}/api/desks?page={page}&page_size=100") as response:
            batch = json.load(response)
        desks += batch
        if len(batch) < 100:
            return desks
        page += 1


def all_events(api: str) -> list[dict]:
    events: list[dict] = []
    while True:
        after = events[-1]["seq"] if events else 0
        with urllib.request.urlopen(f"{api}/api/events?after={after}&limit=1000") as response:
            batch = json.load(response)
        events += batch
        if len(batch) < 1000:
            return events


def log_head(api: str) -> int:
    with urllib.request.urlopen(f"{api}/api/events?limit=1") as response:
        return int(response.headers["X-Event-Seq"])


def test_up_stopped_and_started_again_keeps_desks_log_and_epoch(tmp_path):
    store = tmp_path / "store.sqlite3"
    first = Running(free_port(), tmp_path / "first.log", store)
    try:
        first.wait_ready()
        created = [post_desk(first.api, f"Mesa {n}") for n in range(3)]
        hello, events = receive(f"{first.ws}?after=0", 3)
        first.process.terminate()  # what Ctrl-C on `make run` does
        assert first.process.wait(10) == 0
    finally:
        first.close()

    second = Running(free_port(), tmp_path / "second.log", store)
    try:
        second.wait_ready()
        assert [desk["id"] for desk in all_desks(second.api)] == created
        post_desk(second.api, "Mesa 3")
        resumed, missed = receive(f"{second.ws}?after=3&epoch={hello['epoch']}", 1)
        assert resumed["epoch"] == hello["epoch"]
        assert (missed[0]["type"], missed[0]["seq"], missed[0]["desk"]["name"]) == (
            "desk_created",
            4,
            "Mesa 3",
        )
        assert [e["seq"] for e in all_events(second.api)] == [1, 2, 3, 4]
    finally:
        second.close()


def test_api_workers_log_at_the_level_asked(tmp_path):
    """gunicorn configures logging again in each worker: DESKS_LOG_LEVEL must survive it."""
    store = str(tmp_path / "store.sqlite3")
    lines = {}
    for level in ("INFO", "WARNING"):
        port = free_port()
        log = tmp_path / f"api-{level}.log"
        env = desks_env(DESKS_EMBEDDED_PATH=store, DESKS_LOG_LEVEL=level)
        with spawned(log, env, "api", "--port", str(port), "--workers", "1"):
            wait_until(lambda port=port: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 30)
            post_desk(f"http://127.0.0.1:{port}", f"Mesa {level}")
        lines[level] = log.read_text().splitlines()
    assert any("msg=request" in line for line in lines["INFO"]), lines["INFO"]
    assert not [line for line in lines["WARNING"] if "level=info" in line], lines["WARNING"]
