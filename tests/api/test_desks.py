"""The desks resource as a REST client sees it."""

from __future__ import annotations

import json
import re

import pytest

DESK = {"name": "Mesa Ejecutiva", "width": 180, "height": 90}


def create(client, **overrides):
    response = client.post("/api/desks", json={**DESK, **overrides})
    assert response.status_code == 201, response.json
    return response


def test_create_returns_the_desk_with_location_and_etag(client):
    response = create(client, name="  Mesa Ejecutiva  ")
    desk = response.json
    assert list(desk) == ["id", "name", "width", "height", "version", "created_at", "updated_at"]
    assert re.fullmatch(r"[0-9a-f]{24}", desk["id"])
    assert desk["name"] == "Mesa Ejecutiva"
    assert (desk["width"], desk["height"], desk["version"]) == (180, 90, 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", desk["created_at"])
    assert desk["created_at"] == desk["updated_at"]
    assert response.headers["Location"] == f"/api/desks/{desk['id']}"
    assert response.headers["ETag"] == '"1"'
    assert client.get(response.headers["Location"]).json == desk


def test_integral_floats_are_stored_as_integers_and_fractions_kept(client):
    desk = create(client, width=180.0, height=75.5).json
    assert json.dumps([desk["width"], desk["height"]]) == "[180, 75.5]"


def test_list_is_paginated_newest_last(client):
    ids = [create(client, name=f"Desk {n}").json["id"] for n in range(5)]
    response = client.get("/api/desks?page=2&page_size=2")
    assert [d["id"] for d in response.json] == ids[2:4]
    pagination = json.loads(response.headers["X-Pagination"])
    assert pagination["total"] == 5
    assert pagination["total_pages"] == 3
    assert [d["id"] for d in client.get("/api/desks").json] == ids


def test_name_filter_is_a_case_insensitive_literal_substring(client):
    create(client, name="Mesa Ejecutiva")
    create(client, name="Standing desk")
    create(client, name="a.*b (c)")
    assert [d["name"] for d in client.get("/api/desks?name=EJEC").json] == ["Mesa Ejecutiva"]
    assert client.get("/api/desks?name=.*").json[0]["name"] == "a.*b (c)"
    assert len(client.get("/api/desks?name=.*").json) == 1
    assert client.get("/api/desks?name=(c)").json[0]["name"] == "a.*b (c)"


def test_get_unknown_or_malformed_id_is_404(client):
    assert client.get("/api/desks/" + "0" * 24).status_code == 404
    for bad in ["zz", "0" * 25, "x" * 5000, "%24where"]:
        response = client.get(f"/api/desks/{bad}")
        assert response.status_code == 404
        assert response.json["code"] == 404


def test_put_replaces_and_patch_changes_a_subset_bumping_version(client):
    desk = create(client).json
    put = client.put(f"/api/desks/{desk['id']}", json={"name": "B", "width": 100, "height": 50})
    assert put.status_code == 200
    assert (put.json["name"], put.json["width"], put.json["height"]) == ("B", 100, 50)
    assert put.json["version"] == 2
    patch = client.patch(f"/api/desks/{desk['id']}", json={"width": 200})
    assert (patch.json["name"], patch.json["width"], patch.json["version"]) == ("B", 200, 3)
    assert patch.headers["ETag"] == '"3"'
    assert patch.json["updated_at"] >= patch.json["created_at"]
    assert patch.json["created_at"] == desk["created_at"]


def test_a_write_that_changes_nothing_keeps_the_version_and_makes_no_change_event(client, store):
    desk = create(client).json
    url = f"/api/desks/{desk['id']}"
    with store.desks.watch(max_await_time_ms=50) as stream:
        put = client.put(url, json={"name": "B", "width": 100, "height": 50})
        again = client.put(url, json={"name": "B", "width": 100.0, "height": 50})  # a retry
        same = client.patch(url, json={"width": 100})
        if_match = client.patch(url, json={"height": 50}, headers={"If-Match": '"2"'})
        stale = client.patch(url, json={"height": 50}, headers={"If-Match": '"1"'})
        changes = []
        while (change := stream.try_next()) is not None:
            changes.append(change)
    assert [r.status_code for r in (put, again, same, if_match, stale)] == [200, 200, 200, 200, 412]
    assert again.json == same.json == if_match.json == put.json
    assert {r.headers["ETag"] for r in (put, again, same, if_match)} == {'"2"'}
    assert [c["operationType"] for c in changes] == ["update"]  # the first PUT only


def test_a_write_judged_unchanged_while_another_changes_the_desk_is_applied(client, app):
    desk = create(client).json
    repository = app.extensions["desks.repository"]
    collection = repository._desks
    interleaved = []

    class Interleaved:
        """The desks collection, with another write landing right after the filtered one."""

        def __getattr__(self, name):
            return getattr(collection, name)

        def find_one_and_update(self, query, update, **options):
            found = collection.find_one_and_update(query, update, **options)
            if found is None and not interleaved:
                interleaved.append(True)
                collection.update_one({"_id": query["_id"]}, {"$set": {"width": 1}})
            return found

    repository._desks = Interleaved()
    try:
        # Equal to the stored desk when judged; then another write changes the width.
        response = client.put(f"/api/desks/{desk['id']}", json=DESK)
    finally:
        repository._desks = collection
    assert interleaved
    assert (response.status_code, response.json["width"], response.json["version"]) == (
        200,
        180,
        2,
    )


def test_put_needs_every_field(client):
    desk = create(client).json
    response = client.put(f"/api/desks/{desk['id']}", json={"name": "B"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"width", "height"}


def test_delete_removes_the_desk(client):
    desk = create(client).json
    assert client.delete(f"/api/desks/{desk['id']}").status_code == 204
    assert client.get(f"/api/desks/{desk['id']}").status_code == 404
    assert client.delete(f"/api/desks/{desk['id']}").status_code == 404
    assert client.patch(f"/api/desks/{desk['id']}", json={"width": 1}).status_code == 404


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_stale_if_match_is_412_and_changes_nothing(client, method):
    desk = create(client).json
    client.patch(f"/api/desks/{desk['id']}", json={"width": 111})
    body = {"json": DESK} if method != "delete" else {}
    response = getattr(client, method)(
        f"/api/desks/{desk['id']}", headers={"If-Match": '"1"'}, **body
    )
    assert response.status_code == 412
    assert response.json["code"] == 412
    current = client.get(f"/api/desks/{desk['id']}").json
    assert (current["version"], current["width"]) == (2, 111)


def test_matching_if_match_succeeds(client):
    desk = create(client).json
    url = f"/api/desks/{desk['id']}"
    assert client.patch(url, json={"width": 1}, headers={"If-Match": '"1"'}).status_code == 200
    assert client.patch(url, json={"width": 2}, headers={"If-Match": '"5", "2"'}).status_code == 200
    assert client.patch(url, json={"width": 3}, headers={"If-Match": "*"}).status_code == 200
    # A weak tag never satisfies If-Match (RFC 9110 strong comparison).
    assert client.patch(url, json={"width": 4}, headers={"If-Match": 'W/"4"'}).status_code == 412
    assert client.delete(url, headers={"If-Match": '"4"'}).status_code == 204


@pytest.mark.parametrize("if_match", ['"1"', "*", 'W/"1"'])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_if_match_on_a_missing_desk_is_412(client, method, if_match):
    body = {"name": "Mesa", "width": 1, "height": 1}
    response = getattr(client, method)(
        "/api/desks/" + "a" * 24, json=body, headers={"If-Match": if_match}
    )
    assert response.status_code == 412  # RFC 9110 13.1.1: no current representation
    assert "ETag" not in response.headers
    unconditional = getattr(client, method)("/api/desks/" + "a" * 24, json=body)
    assert unconditional.status_code == 404


def test_if_match_star_on_an_existing_desk_holds(client):
    desk = create(client).json
    response = client.patch(
        f"/api/desks/{desk['id']}", json={"width": 2}, headers={"If-Match": "*"}
    )
    assert response.status_code == 200


def test_if_match_compares_strongly_and_a_412_names_the_current_version(client):
    desk = create(client).json
    url = f"/api/desks/{desk['id']}"
    response = client.patch(url, json={"width": 2}, headers={"If-Match": 'W/"1"'})
    assert response.status_code == 412  # a weak tag never matches for If-Match
    assert response.headers["ETag"] == '"1"'
    assert client.patch(url, json={"width": 2}).status_code == 200
    stale = client.delete(url, headers={"If-Match": '"1"'})
    assert (stale.status_code, stale.headers["ETag"]) == (412, '"2"')
    assert "version 2" in stale.json["message"]


@pytest.mark.parametrize("if_none_match", ['"1"', 'W/"1"', '"7", W/"1"', "*"])
def test_if_none_match_compares_weakly(client, if_none_match):
    desk = create(client).json
    response = client.get(f"/api/desks/{desk['id']}", headers={"If-None-Match": if_none_match})
    assert (response.status_code, response.headers["ETag"]) == (304, '"1"')
    other = client.get(f"/api/desks/{desk['id']}", headers={"If-None-Match": 'W/"2"'})
    assert (other.status_code, other.headers["ETag"]) == (200, '"1"')


def test_every_desk_response_carries_its_etag(client):
    created = create(client)
    url = f"/api/desks/{created.json['id']}"
    assert created.headers["ETag"] == '"1"'
    assert client.get(url).headers["ETag"] == '"1"'
    assert client.head(url).headers["ETag"] == '"1"'
    assert client.put(url, json={"name": "M", "width": 1, "height": 1}).headers["ETag"] == '"2"'
    assert client.patch(url, json={"width": 3}).headers["ETag"] == '"3"'


def test_if_none_match_returns_304(client):
    desk = create(client).json
    response = client.get(f"/api/desks/{desk['id']}", headers={"If-None-Match": '"1"'})
    assert response.status_code == 304
    assert response.headers["ETag"] == '"1"'


@pytest.mark.parametrize("prefix", ["/api/desk/", "/api/desk"])
def test_seed_routes_behave_like_the_new_ones(client, prefix):
    created = client.post(prefix, json=DESK)
    assert created.status_code == 201
    desk_id = created.json["id"]
    base = prefix.rstrip("/")
    for url in (f"{base}/{desk_id}", f"{base}/{desk_id}/"):
        assert client.get(url).json["id"] == desk_id
    patched = client.patch(f"{base}/{desk_id}", json={"width": 200})
    assert (patched.status_code, patched.json["width"]) == (200, 200)
    assert client.get(prefix).json[0]["id"] == desk_id
    assert client.delete(f"{base}/{desk_id}/").status_code == 204


def test_openapi_document_describes_the_api(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/api/desks", "/api/desks/{desk_id}", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "DeskCreate" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready", "store": "embedded"}
