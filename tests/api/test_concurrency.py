"""Optimistic concurrency: two writers holding the same ETag can never both succeed."""

from __future__ import annotations

import threading

import pytest

from api.repository import DeskRepository, VersionMismatch

ROUNDS = 50


def race(first, second):
    """Run two callables released at the same instant; return their outcomes."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(index, action):
        barrier.wait()
        outcomes[index] = action()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_same_etag_writers_exactly_one_wins(app, method):
    wins = 0
    for round_ in range(ROUNDS):
        with app.test_client() as setup:
            desk = setup.post("/api/desks", json={"name": "d", "width": 1, "height": 1}).json
        url = f"/api/desks/{desk['id']}"
        body = (
            {"json": {"name": "x", "width": 2 + round_, "height": 3}} if method != "delete" else {}
        )

        def write(body=body, url=url):
            with app.test_client() as client:
                return getattr(client, method)(url, headers={"If-Match": '"1"'}, **body).status_code

        statuses = sorted(race(write, write))
        # The loser of a delete race finds the desk gone (404) or moved on (412): never a 2xx.
        allowed = [[204, 404], [204, 412]] if method == "delete" else [[200, 412]]
        assert statuses in allowed, statuses
        wins += 1
        if method != "delete":
            with app.test_client() as check:
                assert check.get(url).json["version"] == 2
    assert wins == ROUNDS


def test_repository_version_check_is_atomic_across_many_writers(store):
    repository = DeskRepository(store.desks)
    desk = repository.create({"name": "d", "width": 1, "height": 1})
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def writer(n):
        barrier.wait()
        try:
            repository.update(str(desk["_id"]), {"width": n + 1}, versions=[1])
            outcome = "won"
        except VersionMismatch:
            outcome = "lost"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == ["lost"] * 7 + ["won"]
    assert repository.get(str(desk["_id"]))["version"] == 2
