"""The `desks` command as an operator uses it, in real processes on free ports."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from broadcaster.server import Broadcaster
from desks.auth import Verifier
from embedded import EmbeddedClient
from tests.broadcaster.test_server import new_log
from tests.broadcaster.test_server import running as running_broadcaster
from tests.conftest import free_port, wait_until
from tests.processes import ROOT, Running, desks_env, http_status, spawned


def desks(*args, env=None, **kwargs):
    merged = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DESKS_EMBEDDED_PATH": ":memory:",
        **(env or {}),
    }
    merged.pop("MONGODB_URI", None) if "MONGODB_URI" not in (env or {}) else None
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *args],
        capture_output=True,
        text=True,
        env=merged,
        timeout=30,
        **kwargs,
    )


def test_help_lists_subcommands():
    result = desks("--help")
    assert result.returncode == 0
    assert "api" in result.stdout and "up" in result.stdout


@pytest.mark.parametrize(
    "args", [["frobnicate"], ["up", "--port", "nope"], ["up", "--port", "99999"], []]
)
def test_bad_options_exit_2_with_a_message(args):
    result = desks(*args)
    assert result.returncode == 2
    assert "desks" in result.stderr and "error" in result.stderr


@pytest.mark.parametrize("command", ["up", "api", "watcher", "broadcaster"])
def test_store_processes_on_a_private_memory_store_exit_2_explaining_why(command):
    result = desks(command, env={"DESKS_EMBEDDED_PATH": ":memory:"})
    assert result.returncode == 2
    assert "MONGODB_URI" in result.stderr and "DESKS_EMBEDDED_PATH" in result.stderr


def test_variables_of_the_retired_push_channel_are_named_once_at_start(tmp_path):
    with socket.socket() as taken:  # the broadcaster stops at once on a busy port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {
            "DESKS_PUBLISH_TOKEN": "publish-token-of-an-older-version-0123",
            "DESKS_BROADCASTER_URLS": "ws://b1:8765/,ws://b2:8765/",
            "DESKS_EMBEDDED_PATH": str(tmp_path / "store.sqlite3"),
        }
        result = desks("broadcaster", "--port", port, env=env)
    for variable in ("DESKS_PUBLISH_TOKEN", "DESKS_BROADCASTER_URLS"):
        assert result.stderr.count(f"variable={variable}") == 1
    assert result.stderr.count("setting no longer used") == 2
    assert "publish-token-of-an-older-version" not in result.stderr


def test_replay_prints_logged_events_as_json_lines(system):
    port, running = system
    for name in ("A", "B", "C"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/desks",
            data=json.dumps({"name": name, "width": 1, "height": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()
    api = f"http://127.0.0.1:{port}"

    def replay(*args):
        return desks("replay", "--api", api, *args).stdout.splitlines()

    wait_until(lambda: len(replay()) == 3)
    lines = replay("--after", "1", "--limit", "1")
    assert [json.loads(line)["desk"]["name"] for line in lines] == ["B"]

    # The registry as of a seq: desks as JSON lines.
    assert [json.loads(line)["name"] for line in replay("--as-of", "2")] == ["A", "B"]
    assert replay("--as-of", "0") == []
    beyond = desks("replay", "--api", api, "--as-of", "99")
    assert beyond.returncode == 1 and "422" in beyond.stderr

    # One desk's timeline; a desk the log never saw is an error.
    b = json.loads(lines[0])["desk_id"]
    assert [json.loads(line)["desk"]["name"] for line in replay("--desk", b)] == ["B"]
    unknown = desks("replay", "--api", api, "--desk", "f" * 24)
    assert unknown.returncode == 1 and "404" in unknown.stderr

    # A resync keeps its reason on the way through /api/events.
    with EmbeddedClient(running.store) as other_process:
        other_process["desks"]["desks"].drop()
    wait_until(lambda: len(replay()) == 5)
    resync, snapshot = (json.loads(line) for line in replay("--after", "3"))
    assert (resync["type"], resync["reason"]) == ("resync", "invalidated")
    assert (snapshot["type"], snapshot["reason"]) == ("snapshot", "invalidated")  # no desks left


def test_replay_reports_an_unreachable_api():
    result = desks("replay", "--api", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot read" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DESKS_API_PORT", "x"),
        ("MONGODB_URI", "not-a-uri"),
        ("MONGODB_URI", "mongodb://host:99999/"),
        ("MONGODB_URI", "mongodb://host/?maxPoolSize=abc"),
        ("DESKS_MAX_EVENT_BYTES", "10"),
        ("DESKS_JWT_SECRET", "short"),
        ("DESKS_JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"),
        ("DESKS_JWT_PUBLIC_KEY", "/no/such/key.pem"),
        ("DESKS_ANONYMOUS_READS", "maybe"),
        ("DESKS_CORS_ORIGINS", "dash.example.com"),
        ("DESKS_LOG_FORMAT", "xml"),
    ],
)
def test_invalid_environment_exits_2_naming_the_variable(name, value):
    result = desks("up", env={name: value})
    assert result.returncode == 2
    assert name in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def system(tmp_path):
    port = free_port()
    running = Running(port, tmp_path / "desks-up.log")
    try:
        running.wait_ready()
        yield port, running
    finally:
        running.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_curl_commands_work_verbatim(system):
    port, _ = system
    seed = [
        """curl -X POST http://localhost:8000/api/desk/ -H "Content-Type: application/json" -d '{"name": "Mesa Ejecutiva", "width": 180, "height": 90}'""",  # noqa: E501
        """curl -X PATCH http://localhost:8000/api/desk/<id> -H "Content-Type: application/json" -d '{"width": 200}'""",  # noqa: E501
        """curl -X DELETE http://localhost:8000/api/desk/<id>""",
    ]

    def run(command, desk_id=""):
        command = command.replace(":8000", f":{port}").replace("<id>", desk_id)
        return subprocess.run(
            shlex.split(command) + ["-s", "-w", "\n%{http_code}"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.rsplit("\n", 1)

    body, status = run(seed[0])
    assert status == "201"
    created = json.loads(body)
    assert (created["name"], created["width"], created["height"]) == ("Mesa Ejecutiva", 180, 90)
    body, status = run(seed[1], created["id"])
    assert status == "200" and json.loads(body)["width"] == 200
    body, status = run(seed[2], created["id"])
    assert status == "204" and body == ""


def test_up_prints_urls_and_stops_on_sigterm_within_5s(system):
    port, running = system
    assert any(f"http://127.0.0.1:{port}/api/desks" in line for line in running.lines)
    assert any(f"ws://127.0.0.1:{running.ws_port}/" in line for line in running.lines)
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    wait_until(lambda: running.process.poll() is not None, timeout=5)
    assert running.process.returncode == 0
    assert time.monotonic() - started < 5


def test_broadcaster_process_serves_probes_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = desks_env(
        DESKS_EMBEDDED_PATH=str(tmp_path / "store.sqlite3"),
    )
    with spawned(tmp_path / "broadcaster.log", env, "broadcaster", "--port", str(port)) as process:
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200)
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0


def test_broadcaster_on_a_busy_port_exits_1_rather_than_hang(tmp_path):
    env = desks_env(
        DESKS_EMBEDDED_PATH=str(tmp_path / "store.sqlite3"),
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with spawned(tmp_path / "broadcaster.log", env, "broadcaster", "--port", port) as process:
            assert process.wait(20) == 1  # its thread died: the process goes down with it
    assert "cannot listen" in (tmp_path / "broadcaster.log").read_text()


def unreachable_mongodb(timeout_ms: int) -> dict[str, str]:
    """Return an environment naming a MongoDB nothing listens for."""
    return desks_env(
        MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        DESKS_SERVER_SELECTION_TIMEOUT_MS=str(timeout_ms),
    )


def test_up_serves_nothing_until_the_watcher_tails_then_stops_on_sigterm(tmp_path):
    # MongoDB unreachable: a write accepted now could never be logged, so nothing is served.
    port = free_port()
    env = unreachable_mongodb(timeout_ms=200)
    log = tmp_path / "up.log"
    command = ("up", "--port", str(port), "--ws-port", str(free_port()))
    with spawned(log, env, *command) as process:
        wait_until(lambda: "waiting for the watcher" in log.read_text(), timeout=20)
        assert http_status(f"http://127.0.0.1:{port}/healthz") is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
    assert "Traceback" not in log.read_text()


def test_up_on_a_busy_port_says_so_and_exits_1(tmp_path):
    env = {"DESKS_EMBEDDED_PATH": str(tmp_path / "store.sqlite3")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        api = desks("up", "--port", str(port), "--ws-port", str(free_port()), env=env)
        ws = desks("up", "--port", str(free_port()), "--ws-port", str(port), env=env)
    for result in (api, ws):
        assert result.returncode == 1
        assert "cannot start" in result.stderr
        assert "Traceback" not in result.stderr


def test_api_under_gunicorn_answers_and_reports_an_unreachable_store(tmp_path):
    port = free_port()
    env = unreachable_mongodb(timeout_ms=300)
    base = f"http://127.0.0.1:{port}"
    command = ("api", "--port", str(port), "--workers", "1")
    with spawned(tmp_path / "api.log", env, *command) as process:
        wait_until(lambda: http_status(f"{base}/healthz") == 200, timeout=30)
        assert http_status(f"{base}/readyz") == 503
        assert http_status(f"{base}/api/desks") == 503
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_verify_says_whether_log_and_store_agree_and_exits_accordingly(system):
    port, running = system
    for name in ("A", "B"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/desks",
            data=json.dumps({"name": name, "width": 1, "height": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()
    env = {"DESKS_EMBEDDED_PATH": str(running.store)}
    wait_until(lambda: desks("verify", env=env).returncode == 0)
    result = desks("verify", env=env)
    assert result.stdout == "log and store agree: 2 desks, 2 events\n"

    running.close()  # nobody logs what follows
    with EmbeddedClient(running.store) as other_process:
        other_process["desks"]["desks"].update_one({"name": "A"}, {"$set": {"width": 9}})
    result = desks("verify", env=env)
    assert result.returncode == 1
    assert "field width mismatch on desk" in result.stdout
    assert "store 9, log 1" in result.stdout
    assert "log and store differ: 1 differences" in result.stderr


SECRET = "t" * 32


def test_token_mints_a_token_the_services_accept():
    result = desks(
        "token", "--scope", "desks:read", "--ttl", "60", env={"DESKS_JWT_SECRET": SECRET}
    )
    assert result.returncode == 0, result.stderr
    grant = Verifier(secret=SECRET).verify(result.stdout.strip())
    assert grant.scopes == {"desks:read"}
    assert 50 < grant.expires_at - time.time() <= 60
    assert desks("token", "--scope", "desks:read").returncode == 2  # no key to sign with
    assert desks("token", "--scope", "admin", env={"DESKS_JWT_SECRET": SECRET}).returncode == 2


def test_services_warn_once_at_start_when_authentication_is_off(tmp_path):
    with socket.socket() as taken:  # the broadcaster stops at once on a busy port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        off = desks(
            "broadcaster",
            "--port",
            port,
            env={"DESKS_EMBEDDED_PATH": str(tmp_path / "store.sqlite3")},
        )
        on = desks(
            "broadcaster",
            "--port",
            port,
            env={
                "DESKS_EMBEDDED_PATH": str(tmp_path / "store.sqlite3"),
                "DESKS_JWT_SECRET": SECRET,
            },
        )
    assert off.stderr.count("authentication is off") == 1
    assert "authentication is off" not in on.stderr


def test_consume_with_a_refused_token_exits_1_saying_why():
    with running_broadcaster(Broadcaster(new_log(), verifier=Verifier(secret=SECRET))) as (_, url):
        result = desks("consume", "--url", url, "--token", "wrong")
    assert result.returncode == 1
    assert "refused the token (HTTP 401)" in result.stderr


def test_replay_as_of_reads_a_registry_larger_than_a_page_by_its_cursor(system):
    port, running = system
    client = EmbeddedClient(str(running.store))
    try:
        desks_written = [
            {"name": f"D{n}", "width": 1, "height": 1, "version": 1} for n in range(1005)
        ]
        client["desks"]["desks"].insert_many(desks_written)
    finally:
        client.close()
    api = f"http://127.0.0.1:{port}"
    wait_until(lambda: desks("replay", "--api", api, "--as-of", "1005").returncode == 0, timeout=30)
    lines = desks("replay", "--api", api, "--as-of", "1005").stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == [f"D{n}" for n in range(1005)]


@contextlib.contextmanager
def scripted_api(answer):
    """Serve GETs on a free port with `answer(path) -> (status, body, headers)`; yield its URL."""

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body, headers = answer(self.path, self.headers)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_replay_as_of_behind_a_path_prefix_keeps_to_it(tmp_path):
    # The API links its next page from its root (/api/desks?...); behind a proxy mounting it
    # at /prefix, replay must stay under --api, and send its token nowhere else.
    seen: list[tuple[str, str | None]] = []

    def answer(path, headers):
        seen.append((path, headers.get("Authorization")))
        url = urlsplit(path)
        after = int(parse_qs(url.query)["after"][0])
        if url.path != "/prefix/api/desks" or after > 1:
            return 404, {"code": 404}, {}
        link = '</api/desks?as_of=9&after=1&page_size=1000>; rel="next"'
        return 200, [{"name": f"D{after}"}], {"Link": link} if after == 0 else {}

    with scripted_api(answer) as api:
        result = desks("replay", "--api", f"{api}/prefix", "--as-of", "9", "--token", "t0k")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == ["D0", "D1"]
    assert [path.split("?")[0] for path, _ in seen] == ["/prefix/api/desks"] * 2
    assert {token for _, token in seen} == {"Bearer t0k"}


def test_replay_stops_when_the_apis_next_page_does_not_move_on():
    # A server answering full pages that end at the same seq would be read forever.
    requests: list[str] = []

    def answer(path, _headers):
        requests.append(path)
        limit = int(parse_qs(urlsplit(path).query)["limit"][0])
        return 200, [{"seq": 1, "type": "desk_deleted"}] * limit, {}

    with scripted_api(answer) as api:
        result = desks("replay", "--api", api, "--after", "1")
    assert result.returncode == 1
    assert "does not move on" in result.stderr
    assert len(requests) == 1
