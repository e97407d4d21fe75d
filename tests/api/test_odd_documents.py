"""Every read path serves what the store holds: desks written around the API, as they are."""

from __future__ import annotations

import json
import urllib.parse

from desks.bson_json import key_text
from desks.desk import desk_json
from tests.conftest import wait_until
from tests.e2e.conftest import http
from tests.odd_documents import odd_desks


def test_list_item_as_of_and_timelines_answer_200_with_what_each_desk_has(system):
    documents = odd_desks()
    system.store.desks.insert_many(documents)
    status, normal = http(
        "POST", f"{system.api_url}/api/desks", {"name": "Mesa", "width": 180, "height": 90}
    )
    assert status == 201
    api = f"{system.api_url}/api/desks"
    # Shown as events show them: the fields they have, each value mapped to JSON.
    expected = {key_text(d["_id"]): json.loads(json.dumps(desk_json(d))) for d in documents}
    expected[normal["id"]] = normal

    status, listed = http("GET", f"{api}?page_size=100")
    assert status == 200
    assert {desk["id"]: desk for desk in listed} == expected

    for desk_id, desk in expected.items():
        status, item = http("GET", f"{api}/{urllib.parse.quote(desk_id, safe='')}")
        assert (status, item) == (200, desk), desk_id

    head = len(expected)
    wait_until(lambda: system.events.head() == head)
    status, past = http("GET", f"{api}?as_of={head}&page_size=100")
    assert status == 200
    assert {desk["id"]: desk for desk in past} == expected
    status, whole = http("GET", f"{system.api_url}/api/registry?as_of={head}")
    assert (status, whole) == (200, past)
    for desk_id in expected:
        status, timeline = http("GET", f"{api}/{urllib.parse.quote(desk_id, safe='')}/events")
        assert status == 200, desk_id
        assert [event["type"] for event in timeline] == ["desk_created"]


def test_writes_to_desks_written_around_the_api_answer_without_a_500(system):
    desks = system.store.desks
    no_version = desks.insert_one({"name": "a", "width": 1, "height": 1}).inserted_id
    text_version = desks.insert_one(
        {"name": "b", "width": 1, "height": 1, "version": "x"}
    ).inserted_id
    api = f"{system.api_url}/api/desks"
    body = {"name": "c", "width": 2, "height": 2}

    status, updated = http("PUT", f"{api}/{no_version}", body)
    assert (status, updated["version"]) == (200, 1)  # $inc of a missing version starts it at 1
    status, refused = http("PUT", f"{api}/{text_version}", body)
    assert status == 409 and "version" in refused["message"]
    assert desks.find_one({"_id": text_version})["name"] == "b"  # unchanged
    status, _ = http("DELETE", f"{api}/{text_version}")
    assert status == 204
    listed = desks.insert_one({"name": "c", "width": [2, 9], "height": 2, "version": 1})
    status, updated = http("PUT", f"{api}/{listed.inserted_id}", body)  # 2 is in [2, 9]
    assert (status, updated["width"], updated["version"]) == (200, 2, 2)
