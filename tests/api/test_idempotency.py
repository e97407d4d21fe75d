"""POST with an Idempotency-Key: retried any number of ways, one desk and one event."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime

import pytest

from api import create_app
from api.idempotency import KEYS, fingerprint
from api.repository import DeskRepository
from desks.auth import WRITE, Verifier, mint
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import wait_until
from tests.embedded.conftest import REAL_URI

DESK = {"name": "Mesa Ejecutiva", "width": 180, "height": 90}


@pytest.fixture(params=["memory", "file", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def keyed_store(request, tmp_path):
    if request.param == "memory":
        store = open_store(Settings(embedded_path=":memory:"))
    elif request.param == "file":
        store = open_store(Settings(embedded_path=str(tmp_path / "store.sqlite3")))
    elif not REAL_URI:
        pytest.skip("DESKS_TEST_MONGODB_URI is not set: no real replica set to test against")
    else:
        store = open_store(Settings(mongodb_uri=REAL_URI, database=f"desks_{uuid.uuid4().hex[:8]}"))
    yield store
    if request.param == "mongodb":
        store.client.drop_database(store.database.name)
    store.close()


@pytest.fixture
def app(keyed_store):
    return create_app({"TESTING": True, "IDEMPOTENCY_TTL_SECONDS": 3600}, store=keyed_store)


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, body, key, **headers):
    return client.post("/api/desks", json=body, headers={"Idempotency-Key": key, **headers})


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer(client, keyed_store):
    first = post(client, DESK, "k-1")
    again = post(client, {"height": 90.0, "width": 180, "name": " Mesa Ejecutiva "}, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert keyed_store.desks.count_documents({}) == 1


def test_the_same_key_with_another_body_is_422_and_stores_nothing(client, keyed_store):
    post(client, DESK, "k-2")
    response = post(client, {**DESK, "width": 200}, "k-2")
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["errors"]["headers"]
    assert keyed_store.desks.count_documents({}) == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "clé", "a\tb", '""'])
def test_a_malformed_key_is_422(client, keyed_store, key):
    response = post(client, DESK, key)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["errors"]["headers"]
    assert keyed_store.desks.count_documents({}) == 0


def test_the_draft_standards_quoted_key_is_the_same_key(client):
    first = post(client, DESK, '"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    again = post(client, DESK, "8e03978e-40d5-43e8-bc93-6894a57f9324")
    assert again.json["id"] == first.json["id"]


def test_different_keys_and_no_key_each_create(client, keyed_store):
    post(client, DESK, "a")
    post(client, DESK, "b")
    client.post("/api/desks", json=DESK)
    client.post("/api/desks", json=DESK)
    assert keyed_store.desks.count_documents({}) == 4


def test_invalid_bodies_do_not_use_up_the_key(client):
    assert post(client, {**DESK, "width": -1}, "k-3").status_code == 422
    assert post(client, DESK, "k-3").status_code == 201


def test_a_key_is_forgotten_after_its_ttl(keyed_store):
    client = create_app(
        {"TESTING": True, "IDEMPOTENCY_TTL_SECONDS": 0.2}, store=keyed_store
    ).test_client()
    first = post(client, DESK, "k-4").json["id"]
    # Until it expires a retry replays; then the key is new again and makes a new desk.
    wait_until(lambda: post(client, DESK, "k-4").json["id"] != first, timeout=10)


def record(keyed_store, key, subject=""):
    return keyed_store.database[KEYS].find_one({"_id": json.dumps([subject, key])})


def test_an_attempt_that_died_before_its_write_is_carried_out_by_the_retry(app, keyed_store):
    keys = app.extensions["desks.idempotency"]

    def die(desk_id, session):
        raise ConnectionError("the process died here, the key reserved, nothing written")

    with pytest.raises(ConnectionError):
        keys.create_once("", "k-5", fingerprint(DESK), die)
    reserved = record(keyed_store, "k-5")["desk_id"]
    response = post(app.test_client(), DESK, "k-5")
    assert (response.status_code, response.json["id"]) == (201, str(reserved))
    assert keyed_store.desks.count_documents({}) == 1


def test_an_attempt_that_died_after_its_write_leaves_nothing_and_the_retry_creates(
    app, keyed_store
):
    keys = app.extensions["desks.idempotency"]

    def write_then_die(desk_id, session):
        DeskRepository(keyed_store.desks).create(DESK, desk_id, session)
        raise ConnectionError("the process died here, the desk written, no answer stored")

    with pytest.raises(ConnectionError):
        keys.create_once("", "k-6", fingerprint(DESK), write_then_die)
    assert keyed_store.desks.count_documents({}) == 0  # the desk and the answer, or neither
    response = post(app.test_client(), DESK, "k-6")
    assert (response.status_code, response.json["id"]) == (
        201,
        str(record(keyed_store, "k-6")["desk_id"]),
    )
    assert "Idempotent-Replayed" not in response.headers
    assert keyed_store.desks.count_documents({}) == 1


def test_a_retry_after_the_desk_was_deleted_replays_and_recreates_nothing(client, keyed_store):
    first = post(client, DESK, "k-9")
    assert client.delete(f"/api/desks/{first.json['id']}").status_code == 204
    again = post(client, DESK, "k-9")
    assert (again.status_code, again.json) == (201, first.json)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert keyed_store.desks.count_documents({}) == 0


def test_keys_belong_to_the_caller_that_sent_them(keyed_store):
    secret = "s" * 32
    app = create_app({"TESTING": True, "VERIFIER": Verifier(secret=secret)}, store=keyed_store)
    client = app.test_client()

    def as_(subject, body):
        token = mint(secret, [WRITE], 60, subject=subject)
        return post(client, body, "shared-key", Authorization=f"Bearer {token}")

    alice = as_("alice", DESK)
    bob = as_("bob", DESK)  # the same key and body: bob's own desk, not alice's answer
    bob_other = as_("carol", {**DESK, "width": 200})  # another body: no 422 for another's key
    assert [r.status_code for r in (alice, bob, bob_other)] == [201, 201, 201]
    assert len({alice.json["id"], bob.json["id"], bob_other.json["id"]}) == 3
    assert as_("alice", DESK).json == alice.json
    assert keyed_store.desks.count_documents({}) == 3


def test_a_request_whose_key_expired_and_was_reserved_anew_while_it_ran_creates_nothing(
    app, keyed_store, monkeypatch
):
    keys = app.extensions["desks.idempotency"]
    client = app.test_client()
    original = keys._reserve
    later: list = []

    def reserve_then_lose_it(record_id, digest):
        reserved = original(record_id, digest)
        if not later:  # while this request runs on, its reservation expires and another
            later.append(None)  # request with the key reserves it anew and creates its desk
            keyed_store.database[KEYS].update_one(
                {"_id": record_id}, {"$set": {"created_at": datetime(2000, 1, 1)}}
            )
            later[0] = post(client, DESK, "k-10")
        return reserved

    monkeypatch.setattr(keys, "_reserve", reserve_then_lose_it)
    slow = post(client, DESK, "k-10")
    assert slow.status_code == 409
    assert later[0].status_code == 201
    assert keyed_store.desks.count_documents({}) == 1  # the later request's desk only
    retry = post(client, DESK, "k-10")
    assert (retry.status_code, retry.json) == (201, later[0].json)


def test_concurrent_retries_create_one_desk(app, keyed_store):
    results = []

    def attempt():
        results.append(post(app.test_client(), DESK, "k-7"))

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in results] == [201] * 10
    assert len({r.json["id"] for r in results}) == 1
    assert keyed_store.desks.count_documents({}) == 1
