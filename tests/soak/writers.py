"""Writer processes for the soak: over HTTP (with retries) or straight into the store.

Each writes desks of its own with random pauses and appends every acknowledged write to a file
as one JSON line: `{"op": "create" | "update" | "delete", "desk": id, "version": n, "sent": t,
"acked": t}` (times from time.time()). A write that got no answer is not recorded: it may or
may not have happened, and the checks allow both.

    python -m tests.soak.writers http --out FILE --seed N --pause-ms P --api URL [--api URL ...]
    python -m tests.soak.writers store --out FILE --seed N --pause-ms P
"""

from __future__ import annotations

import argparse
import faulthandler
import http.client
import json
import random
import signal
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import IO, Any

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from desks.desk import utc_now
from desks.settings import Settings
from desks.store import open_store

# Attempts of one write (the same Idempotency-Key each time) before giving it up as unknown.
ATTEMPTS = 20
CREATED = "soak key "  # + the POST's Idempotency-Key: the name a desk is created with
PATCHED = "soak patch "  # + a name made for one PATCH (and its retries)


class Recorder:
    """Append acknowledged writes to a file, one JSON line each, flushed at once."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def __call__(self, op: str, desk: str, version: int, sent: float) -> None:
        write = {"op": op, "desk": desk, "version": version, "sent": sent, "acked": time.time()}
        self._out.write(json.dumps(write) + "\n")
        self._out.flush()


def http_writer(
    apis: list[str],
    rng: random.Random,
    pause: Callable[[], None],
    record: Recorder,
    stop: threading.Event,
) -> None:
    """Create, change and delete desks over HTTP, retrying each write on any API until answered."""
    mine: dict[str, int] = {}
    while not stop.is_set():
        pause()
        choice = rng.random()
        sent = time.time()
        if not mine or choice < 0.4:
            key = uuid.uuid4().hex
            # The key in the name: one key must never make two desks, however often retried.
            body = {"name": f"{CREATED}{key}", "width": rng.randint(1, 10_000), "height": 50}
            answer = _request(apis, rng, "POST", "/api/desks", body, {"Idempotency-Key": key}, stop)
            if answer is not None and answer[0] == 201:
                mine[answer[1]["id"]] = 1
                record("create", answer[1]["id"], 1, sent)
        elif choice < 0.85:
            desk = rng.choice(list(mine))
            # A name for this PATCH alone: a retry applied twice would log it twice.
            body = {"width": rng.randint(1, 10_000), "name": f"{PATCHED}{uuid.uuid4().hex}"}
            answer = _request(apis, rng, "PATCH", f"/api/desks/{desk}", body, {}, stop)
            if answer is not None and answer[0] == 200:
                mine[desk] = answer[1]["version"]
                record("update", desk, answer[1]["version"], sent)
        else:
            desk = rng.choice(list(mine))
            answer = _request(apis, rng, "DELETE", f"/api/desks/{desk}", None, {}, stop)
            # 404 after a retry: the attempt that got no answer deleted it (no one else does).
            if answer is not None and answer[0] in (204, 404):
                record("delete", desk, mine.pop(desk), sent)


def _request(
    apis: list[str],
    rng: random.Random,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    stop: threading.Event,
) -> tuple[int, Any] | None:
    """Send until an API answers (not 5xx); None if it never did."""
    for attempt in range(ATTEMPTS):
        if attempt and stop.is_set():
            return None
        url = urllib.parse.urlsplit(rng.choice(apis))
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            payload = json.dumps(body) if body is not None else None
            sent = {**headers, "Content-Type": "application/json"} if payload else headers
            connection.request(method, path, payload, sent)
            response = connection.getresponse()
            raw = response.read()
            if response.status < 500:
                return response.status, json.loads(raw) if raw else None
        except (OSError, http.client.HTTPException):
            pass  # refused, reset, half an answer: unknown, try again
        finally:
            connection.close()
        time.sleep(0.05 * (attempt + 1))
    return None


def store_writer(
    rng: random.Random, pause: Callable[[], None], record: Recorder, stop: threading.Event
) -> None:
    """Create, change and delete desks straight in the store, as a script around the API would."""
    store = open_store(Settings.from_env())
    desks = store.desks
    mine: dict[Any, int] = {}
    try:
        while not stop.is_set():
            pause()
            choice = rng.random()
            sent = time.time()
            try:
                if not mine or choice < 0.4:
                    now = utc_now()
                    document = {
                        "name": "by hand",
                        "width": rng.randint(1, 10_000),
                        "height": 7,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    key = desks.insert_one(document).inserted_id
                    mine[key] = 1
                    record("create", str(key), 1, sent)
                elif choice < 0.85:
                    key = rng.choice(list(mine))
                    changed = desks.find_one_and_update(
                        {"_id": key},
                        {
                            "$set": {"width": rng.randint(1, 10_000), "updated_at": utc_now()},
                            "$inc": {"version": 1},
                        },
                        return_document=ReturnDocument.AFTER,
                    )
                    mine[key] = changed["version"]
                    record("update", str(key), changed["version"], sent)
                else:
                    key = rng.choice(list(mine))
                    desks.delete_one({"_id": key})
                    record("delete", str(key), mine.pop(key), sent)
            except PyMongoError:
                pass  # unknown: the checks allow it to have happened or not
    finally:
        store.close()


class Spells:
    """Bursts of writes and idle spells, the same for every writer (a shared seed and start).

    An idle spell lasts 0.05 to 0.6 s: longer than the soak's no-op interval and empty-poll
    wait, and on both sides of the default poll wait (500 ms), so the first writes of every
    burst land where a stream finishes an empty poll and a no-op is being written.
    """

    def __init__(self, seed: int, start: float) -> None:
        self._rng = random.Random(seed)
        self._burst = (start, start)  # the current burst: [begin, end)

    def until_active(self, now: float) -> float:
        """Return how long to wait for a burst (0 inside one)."""
        while now >= self._burst[1]:
            begin = self._burst[1] + self._rng.uniform(0.05, 0.6)
            self._burst = (begin, begin + self._rng.uniform(0.3, 1.5))
        return max(0.0, self._burst[0] - now)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.writers")
    parser.add_argument("kind", choices=("http", "store"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--pause-ms", type=float, required=True, help="mean pause")
    parser.add_argument("--api", action="append", default=[])
    parser.add_argument("--spells-seed", type=int, required=True, help="shared by all writers")
    parser.add_argument("--spells-start", type=float, required=True, help="time.time() of 0")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # A writer that does not stop is asked where each of its threads is (into its log).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    rng = random.Random(args.seed)

    spells = Spells(args.spells_seed, args.spells_start)

    def pause() -> None:
        stop.wait(rng.uniform(0, 2 * args.pause_ms) / 1000)
        stop.wait(spells.until_active(time.time()))

    with open(args.out, "a", encoding="utf-8") as out:
        record = Recorder(out)
        if args.kind == "http":
            http_writer(args.api, rng, pause, record, stop)
        else:
            store_writer(rng, pause, record, stop)


if __name__ == "__main__":
    main()
