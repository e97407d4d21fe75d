"""Changes written around the API, whatever they hold, reach every client, in order."""

from __future__ import annotations

import json
import re

from bson import Decimal128

from desks.event_log import EventLog
from tests.conftest import wait_until
from tests.e2e.conftest import http
from tests.odd_documents import ODD_VALUES, WHEN


def test_every_bson_type_and_a_1_mb_desk_reach_every_client_in_order(system, listen):
    clients = [listen(system.broadcaster_url) for _ in range(2)]
    for client in clients:
        assert client.next()["type"] == "hello"
    desks = system.store.desks
    for name, value in ODD_VALUES.items():
        desks.insert_one({"name": name, "width": value, "height": 90, "version": 1, "x": value})
    big = desks.insert_one({"name": "x" * 1_000_000, "width": 1, "height": 1, "version": 1})
    desks.update_one({"_id": big.inserted_id}, {"$set": {"name": "y" * 1_000_000, "version": 2}})
    status, normal = http(
        "POST", f"{system.api_url}/api/desks", {"name": "Mesa", "width": 180, "height": 90}
    )
    assert status == 201
    count = len(ODD_VALUES) + 3

    for client in clients:
        events = client.events(count)
        assert [event["seq"] for event in events] == list(range(1, count + 1))
        assert [event["desk"].get("name") for event in events[: len(ODD_VALUES)]] == list(
            ODD_VALUES
        )
        by_name = {event["desk"]["name"]: event["desk"] for event in events[: len(ODD_VALUES)]}
        assert by_name["objectid"]["width"] == "673a2f1b8e4d2a1c3b5e6f7a"
        assert by_name["decimal"]["width"] == "180.50"
        assert by_name["binary"]["width"] == "AP9kZXNr"
        assert by_name["int64"]["width"] == 2**40
        assert by_name["nan"]["width"] == "NaN"
        assert by_name["infinity"]["width"] == "-Infinity"
        assert by_name["timestamp"]["width"] == {"$timestamp": {"t": 1700000000, "i": 7}}
        created, updated = events[-3], events[-2]
        for reduced in (created, updated):
            assert reduced["truncated"] is True
            assert "name" not in reduced["desk"] and "changes" not in reduced
            assert reduced["desk"]["id"] == str(big.inserted_id)
            assert len(json.dumps(reduced).encode()) <= system.settings.max_event_bytes
        assert updated["version"] == 2
        assert events[-1]["desk"] == normal
        assert client.quiet()

    status, page = http("GET", f"{system.api_url}/api/events?limit=1000")
    assert status == 200
    assert len(page) == count
    nested = next(event for event in page if event["desk"].get("name") == "nested_date")
    assert nested["desk"]["width"] == {"when": ["2026-11-28T14:30:45.123Z"]}


def test_an_old_log_holding_bson_values_is_still_served(system):
    # Written by hand, as a version before the JSON mapping could have logged it.
    log = system.store.database["desk_events"]
    log.insert_one(
        {
            "_id": 1,
            "token": "old",
            "type": "desk_created",
            "at": "2026-11-28T14:30:45.123Z",
            "desk_id": "a",
            "version": 1,
            "desk": {"id": "a", "name": "Mesa", "width": Decimal128("1.5"), "when": WHEN},
        }
    )
    status, page = http("GET", f"{system.api_url}/api/events")
    assert status == 200
    assert page[0]["desk"]["width"] == "1.5"
    assert page[0]["desk"]["when"] == "2026-11-28T14:30:45.123Z"


def test_resync_events_keep_their_reason_over_rest(system):
    system.store.desks.drop()
    wait_until(lambda: EventLog(system.store.database).head() >= 1)
    status, page = http("GET", f"{system.api_url}/api/events")
    assert status == 200
    assert page[0]["type"] == "resync"
    assert page[0]["reason"] == "invalidated"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", page[0]["at"])
