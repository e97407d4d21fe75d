"""The soak: a deployment on one store, writers in several processes, every process killed.

What runs, each a real process on one store (an embedded file, or a replica set):
- `desks api --workers 2`, and `desks up` (its own API, watcher and broadcaster);
- two `desks watcher` processes (one active, one standing by; `desks up`'s is a third), and a
  `desks broadcaster`; whichever watcher leads writes the log both broadcasters follow;
- writer processes over HTTP (retrying each write, POSTs with an Idempotency-Key, on either
  API) and writer processes straight into the store, in bursts and idle spells, with pauses
  whose gaps straddle the store's idle no-op interval and the watchers' poll wait;
- WebSocket clients in this process that disconnect now and then and resume with `after`
  and their epoch, on either broadcaster.

While they run, one process after another is killed with SIGKILL and started again; on the
embedded store, now and then every watcher is killed and the store's history dropped, so the
next watcher resyncs and snapshots while writes go on. Then the writers stop and the oracle
decides: `desks verify` agrees (the log explains the store and never contradicts itself);
every acknowledged write is logged exactly once (or, made while history was lost, shown by
the snapshot that followed), each desk's versions in order; no Idempotency-Key made two desks
and no PATCH was logged twice; every client saw each seq once, in order, equal to the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from desks.event_log import EVENTS, EventLog
from desks.settings import Settings
from desks.store import Store, open_store
from desks.verify import read_log
from embedded import EmbeddedClient
from tests.conftest import free_port
from tests.processes import desks_env
from tests.soak.oracle import HistoryLoss, Oracle
from watcher.checkpoint import CHECKPOINTS

NOOP_SECONDS = 0.02  # the store's idle no-op interval: the gaps between writes straddle it
WATCHER_POLL_MS = 20
WRITERS = ("http", "http", "http", "store", "store")
CLIENTS = 4
RETAINED = 10_000  # events each broadcaster keeps for clients that resume (the default)
HISTORY_LOSS = 0.15  # of faults, on the embedded store: every watcher down, history dropped


@dataclass
class Report:
    """What a soak did and what the oracle found."""

    seed: int
    seconds: float
    acknowledged: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    history_losses: list[HistoryLoss] = field(default_factory=list)
    reconnects: int = 0
    resets: int = 0
    received: int = 0
    events: int = 0
    desks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Tell whether nothing was lost, repeated or reordered."""
        return not self.problems

    def summary(self) -> str:
        """Return the counts, one line each."""
        writes = sum(self.acknowledged.values())
        lines = [
            f"soak seed {self.seed}: {self.seconds:.0f} s of faults",
            f"  acknowledged writes  {writes} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.acknowledged.items()))})",
            f"  processes killed     {sum(self.kills.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.kills.items()))}), each restarted",
            f"  history lost         {len(self.history_losses)} times (every watcher down)",
            f"  clients              {CLIENTS}, {self.reconnects} reconnections, "
            f"{self.received} events received, {self.resets} resets (fell out of the window)",
            f"  event log            {self.events} events, {self.desks} desks in the store",
            f"  problems             {len(self.problems)} (lost 0, duplicated 0 when none)",
        ]
        lines += [f"    {problem}" for problem in self.problems[:20]]
        return "\n".join(lines)


class Component:
    """One `desks` process, killed and started again on the same ports."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self._args = args
        self._env = env
        self._log = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (its own process group, its output appended to its log)."""
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "launcher.cli", *self._args],
                stdout=log,
                stderr=log,
                env=self._env,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the process itself, then wait until its children are gone too."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._await_group(10)

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM), SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._await_group(10)

    def _await_group(self, timeout: float) -> None:
        # Children (gunicorn workers) notice their parent is gone and exit; a port they hold
        # would make the restart fail, so wait for them, and kill the rest after `timeout`.
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.02)


class Client(threading.Thread):
    """A WebSocket client that disconnects now and then and resumes with after and epoch."""

    def __init__(self, urls: list[str], rng: random.Random, stop: threading.Event) -> None:
        super().__init__(name="soak-client", daemon=True)
        self._urls = urls
        self._rng = rng
        self._halt = stop
        self.seen: list[tuple[int, str, str | None, int | None]] = []
        self.epoch: str | None = None
        self.last = 0  # the seq to resume after
        self.reconnects = 0
        self.resets = 0
        self.problems: list[str] = []

    def run(self) -> None:
        while not self._halt.is_set():
            url = self._rng.choice(self._urls)
            query = f"?after={self.last}" + (f"&epoch={self.epoch}" if self.epoch else "")
            try:
                with connect(url + query, open_timeout=2, close_timeout=1) as connection:
                    self._follow(connection, self._rng.randint(1, 300))
            except (WebSocketException, OSError, TimeoutError):
                pass  # killed mid-handshake or mid-stream, or starting: resume again
            self.reconnects += 1
            self._halt.wait(self._rng.uniform(0.01, 0.2))

    def _follow(self, connection: Any, budget: int) -> None:
        while not self._halt.is_set() and budget > 0:
            try:
                message = json.loads(connection.recv(timeout=0.5))
            except TimeoutError:
                continue
            kind = message["type"]
            if kind == "hello":
                if message["epoch"] is not None:
                    if self.epoch not in (None, message["epoch"]):
                        self.problems.append(f"epoch changed: {self.epoch} -> {message['epoch']}")
                    self.epoch = message["epoch"]
                continue
            if kind == "reset":
                # As the contract says: only for a position older than the retained window
                # (a resync's snapshot adds one event per desk at once). Then reload: go on
                # from the head.
                if message["head"] - self.last <= RETAINED:
                    self.problems.append(
                        f"reset at after={self.last}, within the window: {message}"
                    )
                self.resets += 1
                self.last = message["head"]
                return
            if message["seq"] != self.last + 1:
                self.problems.append(f"seq {message['seq']} after {self.last}")
            self.seen.append((message["seq"], kind, message.get("desk_id"), message.get("version")))
            self.last = message["seq"]
            budget -= 1


class Soak:
    """Run the deployment under faults for `seconds`, then judge it."""

    def __init__(self, workdir: Path, seed: int, seconds: float, mongodb_uri: str | None = None):
        self.workdir = workdir
        self.seed = seed
        self.seconds = seconds
        self.rng = random.Random(seed)
        workdir.mkdir(parents=True, exist_ok=True)
        self.report = Report(seed, seconds)
        api_port, up_port, up_ws, ws_port = free_port(), free_port(), free_port(), free_port()
        self.apis = [f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{up_port}"]
        self.broadcasters = [f"ws://127.0.0.1:{ws_port}/", f"ws://127.0.0.1:{up_ws}/"]
        overrides = {
            "DESKS_LEASE_TTL_SECONDS": "2",
            "DESKS_EMBEDDED_NOOP_SECONDS": str(NOOP_SECONDS),
            # Short polls: every gap between writes ends in an empty poll, the moment a stream
            # that read past its snapshot would jump over a write committing alongside.
            "DESKS_WATCHER_MAX_AWAIT_MS": str(WATCHER_POLL_MS),
            "DESKS_LOG_LEVEL": "WARNING",
            "DESKS_HISTORY_SIZE": str(RETAINED),
        }
        if mongodb_uri:
            overrides |= {"MONGODB_URI": mongodb_uri, "DESKS_DB": f"soak_{seed}_{os.getpid()}"}
        else:
            overrides["DESKS_EMBEDDED_PATH"] = str(workdir / "store.sqlite3")
        self.env = desks_env(**overrides)
        self.settings = Settings.from_env(self.env)
        self.components = [
            Component("api", ["api", "--port", str(api_port), "--workers", "2"], self.env, workdir),
            Component("broadcaster", ["broadcaster", "--port", str(ws_port)], self.env, workdir),
            *(
                Component(
                    f"watcher-{n}",
                    ["watcher"],
                    {**self.env, "DESKS_WATCHER_HEALTH_PORT": str(free_port())},
                    workdir,
                )
                for n in (1, 2)
            ),
            Component(
                "up", ["up", "--port", str(up_port), "--ws-port", str(up_ws)], self.env, workdir
            ),
        ]
        self.writers: list[subprocess.Popen[bytes]] = []
        self.outputs: list[Path] = []

    def run(self) -> Report:
        """Run the soak and judge it; the report says what happened."""
        stop_clients = threading.Event()
        clients = [
            Client(self.broadcasters, random.Random(self.rng.random()), stop_clients)
            for _ in range(CLIENTS)
        ]
        try:
            for component in self.components:
                component.start()
            self._await_api()
            self._start_writers()
            for client in clients:
                client.start()
            self._faults(time.monotonic() + self.seconds)
            self._stop_writers()
            self._settle()
            self._await_clients(clients)
        finally:
            stop_clients.set()
            for client in clients:
                client.join(5)
            for writer in self.writers:
                if writer.poll() is None:
                    writer.kill()
            for component in self.components:
                component.stop()
        self._judge(clients)
        return self.report

    def _await_api(self) -> None:
        deadline = time.monotonic() + 60
        while not any(_status(f"{api}/readyz") == 200 for api in self.apis):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no API became ready; logs in {self.workdir}")
            time.sleep(0.1)

    def _start_writers(self) -> None:
        spells, start = self.rng.randrange(1 << 30), time.time()
        for n, kind in enumerate(WRITERS):
            out = self.workdir / f"writer-{n}-{kind}.jsonl"
            self.outputs.append(out)
            command = [sys.executable, "-m", "tests.soak.writers", kind, "--out", str(out)]
            command += ["--seed", str(self.rng.randrange(1 << 30))]
            # In bursts, each pauses 0 to 2 x (writers x interval): the gaps between writes
            # of all of them straddle the no-op interval. Between bursts, all are idle.
            command += ["--pause-ms", str(NOOP_SECONDS * 1000 * len(WRITERS))]
            command += ["--spells-seed", str(spells), "--spells-start", str(start)]
            for api in self.apis:
                command += ["--api", api]
            with (self.workdir / f"writer-{n}.log").open("ab") as log:
                self.writers.append(subprocess.Popen(command, stdout=log, stderr=log, env=self.env))

    def _faults(self, until: float) -> None:
        """Kill one process after another with SIGKILL, and start each again; now and then
        (embedded store) lose the history too, while every watcher is down."""
        while time.monotonic() < until:
            time.sleep(self.rng.uniform(0.3, 1.5))
            if self.env.get("DESKS_EMBEDDED_PATH") and self.rng.random() < HISTORY_LOSS:
                self._lose_history()
                continue
            victim = self.rng.choice(self.components)
            victim.kill()
            self.report.kills[victim.name] += 1
            time.sleep(self.rng.uniform(0, 0.5))
            victim.start()

    def _lose_history(self) -> None:
        """Kill every process with a watcher, drop the store's history, start them again, and
        wait for the resync's snapshot to settle: writes meanwhile are only in the snapshot."""
        began = time.time()
        store = open_store(self.settings)
        head = EventLog(store.database).head()
        watching = [c for c in self.components if c.name.startswith("watcher") or c.name == "up"]
        for component in watching:
            component.kill()
            self.report.kills[component.name] += 1
        time.sleep(self.rng.uniform(0, 0.5))
        with EmbeddedClient(self.env["DESKS_EMBEDDED_PATH"]) as embedded:
            embedded.oplog.forget_history()
        for component in watching:
            component.start()
        try:
            deadline = time.monotonic() + 60
            while not self._settled_after(store, head):
                if time.monotonic() > deadline:
                    self.report.problems.append("a resync did not settle within 60 s")
                    break
                time.sleep(0.05)
        finally:
            store.close()
        self.report.history_losses.append(HistoryLoss(began, time.time(), head))

    def _stop_writers(self) -> None:
        for writer in self.writers:
            writer.send_signal(signal.SIGTERM)
        for n, writer in enumerate(self.writers):
            try:
                writer.wait(60)
            except subprocess.TimeoutExpired:
                writer.send_signal(signal.SIGUSR1)  # its threads' stacks, into its log
                time.sleep(1)
                writer.kill()
                self.report.problems.append(
                    f"a writer did not stop within 60 s (its stacks: writer-{n}.log)"
                )

    @staticmethod
    def _settled_after(store: Store, head: int) -> bool:
        """Tell whether a snapshot was logged after seq `head` and the watcher has judged every
        change it may already show (its checkpoint no longer says it is settling)."""
        snapshot = store.database[EVENTS].find_one({"type": "snapshot", "_id": {"$gt": head}})
        checkpoint = store.database[CHECKPOINTS].find_one({"_id": "desks"}) or {}
        # The resync stays owed until the snapshot is read and saved; settling ends later.
        owed = "resync" in checkpoint or checkpoint.get("settling_after") is not None
        return snapshot is not None and not owed

    def _settle(self) -> None:
        """Wait until the log explains the store."""
        deadline = time.monotonic() + 120
        while self._verify().returncode != 0:
            if time.monotonic() > deadline:
                self.report.problems.append(f"desks verify disagrees: {self._verify().stdout}")
                return
            time.sleep(0.2)

    def _verify(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "launcher.cli", "verify"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def _await_clients(self, clients: list[Client]) -> None:
        store = open_store(self.settings)
        try:
            head = EventLog(store.database).head()
        finally:
            store.close()
        deadline = time.monotonic() + 120
        while any(client.last < head for client in clients):
            if time.monotonic() > deadline:
                behind = [client.last for client in clients]
                self.report.problems.append(f"clients stuck at {behind}, the log at {head}")
                return
            time.sleep(0.1)

    def _judge(self, clients: list[Client]) -> None:
        store = open_store(self.settings)
        try:
            log = list(read_log(EventLog(store.database)))
            self.report.desks = store.desks.count_documents({})
        finally:
            if self.env.get("MONGODB_URI"):
                store.client.drop_database(store.database.name)
            store.close()
        self.report.events = len(log)
        writes: dict[str, list[dict[str, Any]]] = {kind: [] for kind in WRITERS}
        for output in self.outputs:
            source = output.stem.split("-")[-1]
            writes[source] += [json.loads(line) for line in output.read_text().splitlines()]
        oracle = Oracle(log, self.report.history_losses)
        self.report.acknowledged = oracle.judge_writes(writes)
        for client in clients:
            self.report.reconnects += client.reconnects
            self.report.resets += client.resets
            self.report.received += len(client.seen)
            self.report.problems += client.problems
            oracle.judge_client(client.seen)
        self.report.problems += oracle.problems


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None
