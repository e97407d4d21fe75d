"""The whole system from one command: watcher and broadcaster in threads, and the API.

The API is gunicorn in a child process (launcher/api_process.py) on a store file or MongoDB;
on a private in-memory store (the end-to-end tests, which stop and restart single components)
it is served from this process.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping

from api import create_app
from api.server import InProcessServer
from broadcaster.server import Broadcaster
from desks.event_log import EventLog
from desks.service import Service
from desks.settings import Settings
from desks.store import Store
from launcher import configured
from launcher.api_process import ApiProcess
from launcher.broadcasters import BroadcasterProcesses, ensure_free
from watcher.lease import Lease

log = logging.getLogger("desks.system")

# While start() waits for the watcher's stream (the store is down), it says so this often.
WAITING_LOG_INTERVAL = 10.0


class System:
    """API, watcher and broadcaster on one store, in this process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        on_crash: Callable[[], None] | None = None,
        api: Mapping[str, int] | None = None,
        broadcasters: int = 1,
    ) -> None:
        """Bind the API's port now; `api` holds gunicorn's workers and threads; beyond the
        broadcaster in this process, `broadcasters - 1` more processes share its port."""
        self.settings = settings
        self._more_broadcasters = broadcasters - 1
        self.broadcaster_processes: BroadcasterProcesses | None = None
        self.store = store
        self._on_crash = on_crash  # a component died for good: the process must go down
        self.events = EventLog(store.database)
        self.api: ApiProcess | InProcessServer
        if settings.shared_store:
            self.api = ApiProcess(settings, on_crash=on_crash, **(api or {}))
        else:  # a private in-memory store can only be served from this process
            self._app = create_app(store=store, settings=settings)
            self.api = InProcessServer(self._app, settings.api_host, settings.api_port)
        self.watcher = self._watcher_service()
        self.broadcaster = self._broadcaster_service(settings.broadcaster_port)

    @property
    def api_url(self) -> str:
        """Return the API's base URL."""
        return f"http://{self.settings.api_host}:{self.api.port}"

    @property
    def broadcaster_url(self) -> str:
        """Return the URL clients connect to."""
        return f"ws://{self.settings.broadcaster_host}:{self.broadcaster_port}/"

    def _watcher_service(self) -> Service:
        database = self.store.database
        self.watcher_lease = Lease(
            database, f"up:{secrets.token_hex(4)}", self.settings.lease_ttl_seconds
        )
        self._watcher = configured.watcher(
            self.settings, self.store, self.events, self.watcher_lease
        )
        return Service("watcher", self._watcher.run, self._on_crash)

    def _broadcaster_service(self, port: int) -> Service:
        self._broadcaster = Broadcaster(
            self.events,
            self.settings.history_size,
            limits=configured.limits(self.settings),
            verifier=self.settings.verifier(),
            origins=self.settings.page_origins,
        )
        host = self.settings.broadcaster_host
        shared = self._more_broadcasters > 0
        return Service(
            "broadcaster",
            lambda stop: self._broadcaster.run(host, port, stop, reuse_port=shared),
            self._on_crash,
        )

    @property
    def broadcaster_server(self) -> Broadcaster:
        """Return the running broadcaster (its history, its clients)."""
        return self._broadcaster

    @property
    def broadcaster_port(self) -> int:
        """Return the broadcaster's bound port."""
        assert self._broadcaster.port is not None
        return self._broadcaster.port

    def start(self, give_up: threading.Event | None = None) -> bool:
        """Start every component, the API last, once the watcher's stream is open and the
        broadcaster follows the log (a client connecting then is served from its head).

        A write accepted before the stream opens would never be logged when the watcher starts
        from "now" (a new store, or after a resync), so the API waits for it, however long the
        store takes, unless `give_up` is set first (False). Ready also means standing by while
        another watcher holds the lease (a crashed one's, until it expires).
        """
        if self._more_broadcasters > 0:  # the port shared: not with another system's group
            ensure_free(self.settings.broadcaster_host, self.settings.broadcaster_port)
        self.broadcaster.start()
        self._await_broadcaster(self.settings.broadcaster_port)
        if self._more_broadcasters > 0:
            self.broadcaster_processes = BroadcasterProcesses(
                self.settings,
                self.settings.broadcaster_host,
                self.broadcaster_port,
                self._more_broadcasters,
                on_crash=self._on_crash,
                taken=True,
            )
            self.broadcaster_processes.start()
        self.watcher.start()
        began = time.monotonic()
        say_at = began + 1.0
        while not (self._watcher.wait_ready(0.2) and self._broadcaster.following.wait(0.2)):
            if give_up is not None and give_up.is_set():
                return False
            if time.monotonic() >= say_at:
                say_at += WAITING_LOG_INTERVAL
                log.warning(
                    "waiting for the watcher's change stream and the broadcaster's log "
                    "before serving",
                    extra={
                        "waited_s": round(time.monotonic() - began),
                        "role": self._watcher.role,
                        "broadcaster_following": self._broadcaster.following.is_set(),
                    },
                )
        # The dashboard tells browsers where the broadcaster is: its bound port (port 0 too).
        if isinstance(self.api, ApiProcess):
            self.api.start(broadcaster_port=self.broadcaster_port)
        else:
            self._app.config["DESKS_BROADCASTER_PORT"] = self.broadcaster_port
            self.api.start()
        return True

    def restart_watcher(self) -> None:
        """Stop the watcher and start a fresh one, as a process restart would."""
        self.watcher.stop()
        self.watcher = self._watcher_service()
        self.watcher.start()

    def restart_broadcaster(self) -> None:
        """Stop the broadcaster and start a fresh one on the same port, with empty memory."""
        port = self.broadcaster_port
        self.broadcaster.stop()
        self.broadcaster = self._broadcaster_service(port)
        self.broadcaster.start()
        self._await_broadcaster(port)

    def _await_broadcaster(self, port: int) -> None:
        self._broadcaster.started.wait(30)
        if not self._broadcaster.listening.is_set():
            reason = self._broadcaster.start_error or "timed out"
            raise OSError(f"the broadcaster cannot listen on port {port}: {reason}")

    def stop(self) -> None:
        """Stop everything at once and wait for each (Ctrl-C must not take more than 5 s)."""
        services = [self.watcher, self.broadcaster]
        for service in services:
            service.signal_stop()
        if self.broadcaster_processes is not None:
            self.broadcaster_processes.stop()
        self.api.stop()
        for service in services:
            service.stop()
