"""History from the event log: one desk's timeline, whatever became of the desk."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from api import registry
from desks.event_log import EventLog
from desks.settings import Settings
from desks.store import open_store
from desks.verify import verify
from tests.conftest import running_system, wait_until
from tests.e2e.conftest import http
from tests.embedded.conftest import REAL_URI


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def system(request):
    """Yield a running system on each store."""
    if request.param == "embedded":
        settings = Settings(embedded_path=":memory:", api_port=0, broadcaster_port=0)
    elif not REAL_URI:
        pytest.skip("DESKS_TEST_MONGODB_URI is not set: no real replica set to test against")
    else:
        database = f"desks_history_{uuid.uuid4().hex[:8]}"
        settings = Settings(mongodb_uri=REAL_URI, database=database, api_port=0, broadcaster_port=0)
    with running_system(settings) as system:
        yield system
    if request.param == "mongodb":
        store = open_store(settings)
        store.client.drop_database(settings.database)
        store.close()


def lived_and_died(system):
    """Create a desk, patch it twice, delete it; return its id once all four are logged."""
    api = f"{system.api_url}/api/desks"
    status, desk = http("POST", api, {"name": "Mesa", "width": 180, "height": 90})
    assert status == 201
    http("POST", api, {"name": "Otra", "width": 1, "height": 1})  # not in its timeline
    assert http("PATCH", f"{api}/{desk['id']}", {"width": 200})[0] == 200
    assert http("PATCH", f"{api}/{desk['id']}", {"name": "Mesa Grande"})[0] == 200
    assert http("DELETE", f"{api}/{desk['id']}")[0] == 204
    wait_until(lambda: EventLog(system.store.database).head() == 5)
    return desk["id"]


def test_a_desks_timeline_lists_its_events_in_order_even_once_deleted(system):
    desk_id = lived_and_died(system)
    url = f"{system.api_url}/api/desks/{desk_id}/events"
    with urllib.request.urlopen(url, timeout=10) as response:
        timeline = json.load(response)
        assert response.headers["X-Event-Seq"] == "5"
    assert [event["type"] for event in timeline] == [
        "desk_created",
        "desk_updated",
        "desk_updated",
        "desk_deleted",
    ]
    assert [event["seq"] for event in timeline] == [1, 3, 4, 5]
    assert [event["version"] for event in timeline] == [1, 2, 3, 3]
    assert {event["desk_id"] for event in timeline} == {desk_id}
    assert timeline[2]["changes"]["previous"]["name"] == "Mesa"

    status, page = http("GET", f"{url}?after=1&limit=2")
    assert (status, [event["seq"] for event in page]) == (200, [3, 4])
    assert http("GET", f"{url}?after=5")[1] == []  # known desk, nothing after: an empty page


@pytest.mark.parametrize("desk_id", ["a" * 24, "not-an-id"])
def test_a_desk_the_log_never_saw_is_404(system, desk_id):
    status, body = http("GET", f"{system.api_url}/api/desks/{desk_id}/events")
    assert status == 404 and body["message"]


def test_a_timeline_takes_only_its_own_query_parameters(system):
    desk_id = lived_and_died(system)
    url = f"{system.api_url}/api/desks/{desk_id}/events"
    assert http("GET", f"{url}?as_of=3")[0] == 422
    assert http("GET", f"{url}?limit=0")[0] == 422


def test_the_log_explains_the_store_until_something_writes_around_the_watcher(system):
    lived_and_died(system)
    verdict = verify(system.store)
    assert verdict.agree, verdict.differences
    assert (verdict.desks, verdict.events) == (1, 5)

    system.watcher.stop()  # from here on, writes go unlogged
    desks = system.store.desks
    other = desks.find_one({})
    desks.update_one({"_id": other["_id"]}, {"$set": {"name": "Cambiada"}, "$inc": {"version": 1}})
    extra = desks.insert_one({"name": "Nueva", "width": 1, "height": 1, "version": 1}).inserted_id
    differences = verify(system.store).differences
    assert f"version mismatch on desk {other['_id']}: store 2, log 1" in differences
    assert (
        f"field name mismatch on desk {other['_id']}: store 'Cambiada', log 'Otra'" in differences
    )
    assert f"extra desk {extra}: in the store, not the log" in differences
    desks.delete_many({})
    assert verify(system.store).differences == [
        f"missing desk {other['_id']}: in the log, not the store"
    ]


def test_the_registry_as_of_each_seq_of_a_desks_life(system):
    desk_id = lived_and_died(system)  # 1 created, 2 another desk, 3 and 4 patched, 5 deleted
    api = f"{system.api_url}/api/desks"

    def as_of(seq, query=""):
        with urllib.request.urlopen(f"{api}?as_of={seq}{query}", timeout=10) as response:
            assert response.headers["X-Event-Seq"] == str(seq)
            pagination = json.loads(response.headers["X-Pagination"] or "{}")
            return json.load(response), pagination.get("total", 0)

    def shape(desks):
        return [(d["name"], d["width"], d["version"]) for d in desks]

    assert shape(as_of(0)[0]) == []
    assert shape(as_of(1)[0]) == [("Mesa", 180, 1)]
    assert shape(as_of(2)[0]) == [("Mesa", 180, 1), ("Otra", 1, 1)]
    assert shape(as_of(3)[0]) == [("Mesa", 200, 2), ("Otra", 1, 1)]
    assert shape(as_of(4)[0]) == [("Mesa Grande", 200, 3), ("Otra", 1, 1)]
    assert shape(as_of(5)[0]) == [("Otra", 1, 1)]
    assert as_of(4)[0][0]["id"] == desk_id
    # The live list's filters and pagination, in the past.
    assert shape(as_of(4, "&name=grande")[0]) == [("Mesa Grande", 200, 3)]
    page, total = as_of(4, "&page=2&page_size=1")
    assert (shape(page), total) == ([("Otra", 1, 1)], 2)
    # The present, as_of the head, is what the live list says.
    assert as_of(5)[0] == http("GET", api)[1]

    status, body = http("GET", f"{api}?as_of=6")
    assert status == 422 and "as_of" in body["errors"]["query"]
    assert http("GET", f"{api}?as_of=-1")[0] == 422


def test_a_registry_read_by_cursor_is_every_desk_once_in_order_however_it_changes_meanwhile(
    system,
):
    api = f"{system.api_url}/api/desks"
    for n in range(7):
        assert http("POST", api, {"name": f"Mesa {n}", "width": 100 + n, "height": 50})[0] == 201
    wait_until(lambda: system.events.head() == 7)
    status, everything = http("GET", f"{api}?as_of=7&page_size=100")
    assert status == 200 and len(everything) == 7

    def read(url):
        with urllib.request.urlopen(url, timeout=10) as response:
            link = response.headers["Link"]
            total = json.loads(response.headers["X-Pagination"])["total"]
            return json.load(response), link, response.headers["X-Event-Seq"], total

    # Without as_of the cursor reads the registry at the log's head, and says which seq.
    walked, link, seq, total = read(f"{api}?after=0&page_size=3")
    assert (seq, total) == ("7", 7)
    pages = 1
    # Writes between pages change nothing: every page is as of the first page's seq.
    http("DELETE", f"{api}/{everything[4]['id']}")
    http("POST", api, {"name": "Later", "width": 1, "height": 1})
    while link is not None:
        assert link.endswith('>; rel="next"') and "as_of=7" in link
        page, link, seq, total = read(system.api_url + link[1 : link.index(">")])
        assert (seq, total) == ("7", 7)
        walked += page
        pages += 1
    assert walked == everything and pages == 3
    # A page number counts from the cursor; a cursor at the end gives an empty last page.
    assert read(f"{api}?as_of=7&after=2&page=2&page_size=2")[0] == everything[4:6]
    with urllib.request.urlopen(f"{api}?as_of=7&after=3&page_size=2", timeout=10) as response:
        # Page numbers of the whole list would name pages a cursor read does not have.
        assert json.loads(response.headers["X-Pagination"]) == {"total": 7}
    assert read(f"{api}?as_of=7&after=7")[:2] == ([], None)


def test_the_whole_registry_in_one_answer_is_every_page_together(system):
    api, registry = f"{system.api_url}/api/desks", f"{system.api_url}/api/registry"
    ids = []
    for n in range(5):
        status, desk = http("POST", api, {"name": f"Mesa {n}", "width": 100 + n, "height": 50})
        ids.append(desk["id"])
    assert http("PATCH", f"{api}/{ids[1]}", {"width": 300})[0] == 200
    assert http("DELETE", f"{api}/{ids[2]}")[0] == 204
    wait_until(lambda: system.events.head() == 7)

    def whole(query=""):
        with urllib.request.urlopen(f"{registry}{query}", timeout=10) as response:
            headers = response.headers
            return json.load(response), headers["X-Event-Seq"], headers["X-Total-Count"]

    for seq in range(8):
        pages = http("GET", f"{api}?as_of={seq}&page_size=100")[1]
        assert whole(f"?as_of={seq}") == (pages, str(seq), str(len(pages)))
    assert whole("?as_of=7")[0] == http("GET", api)[1]  # the log caught up: the same
    desks, seq, total = whole()  # as stored now, read after the head it names; no total
    assert (seq, total) == ("7", None) and desks == http("GET", api)[1]
    assert [d["id"] for d in desks] == [ids[0], ids[1], ids[3], ids[4]]
    assert desks[1]["width"] == 300
    for bad in ("?as_of=8", "?as_of=-1", "?as_of=x"):
        status, body = http("GET", f"{registry}{bad}")
        assert status == 422 and "as_of" in body["errors"]["query"], bad


def test_registry_reads_take_turns_and_one_kept_waiting_gets_503(system, monkeypatch):
    # Each read as of a seq holds the whole registry while it folds the log: a few at a time.
    monkeypatch.setattr(registry, "FOLD_WAIT_SECONDS", 0.2)
    url = f"{system.api_url}/api/registry?as_of=0"
    for _ in range(registry.REGISTRIES_AT_ONCE + 2):  # each gives its turn back
        assert http("GET", url)[0] == 200
    held = [registry._folding.acquire(timeout=5) for _ in range(registry.REGISTRIES_AT_ONCE)]
    assert all(held)  # as if other reads were folding or sending
    try:
        urllib.request.urlopen(url, timeout=10)
        raise AssertionError("served while other reads held every turn")
    except urllib.error.HTTPError as error:
        assert error.code == 503 and error.headers["Retry-After"] == "5"
        assert "try again" in json.loads(error.read())["message"]
    finally:
        for _ in held:
            registry._folding.release()
    assert http("GET", url)[0] == 200


def test_the_registry_as_stored_is_streamed_in_order_without_a_turn(system, monkeypatch):
    api = f"{system.api_url}/api/desks"
    monkeypatch.setattr(registry, "CHUNK", 3)  # several chunks, and one left over
    for n in range(10):
        http("POST", api, {"name": f"Mesa {n}", "width": 100 + n, "height": 50})
    wait_until(lambda: system.events.head() == 10)
    system.watcher.stop()  # the store runs ahead of the log: the answer shows the store
    status, late = http("POST", api, {"name": "late", "width": 1, "height": 1})
    held = [registry._folding.acquire(timeout=5) for _ in range(registry.REGISTRIES_AT_ONCE)]
    try:  # every fold's turn taken: reading the store needs none
        with urllib.request.urlopen(f"{system.api_url}/api/registry", timeout=10) as response:
            desks, seq = json.load(response), response.headers["X-Event-Seq"]
    finally:
        for _ in held:
            registry._folding.release()
    assert seq == "10"  # the head read first: subscribe after it
    assert desks == http("GET", f"{api}?page_size=100")[1]  # oldest first, as pages list them
    assert desks[-1]["id"] == late["id"] and len(desks) == 11
