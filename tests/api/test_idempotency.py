"""POST with an Idempotency-Key: retried any number of ways, one desk and one event."""

from __future__ import annotations

import threading
import uuid

import pytest

from api import create_app
from api.idempotency import KEYS, fingerprint
from api.repository import DeskRepository
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import wait_until
from tests.embedded.conftest import REAL_URI

DESK = {"name": "Mesa Ejecutiva", "width": 180, "height": 90}


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def keyed_store(request):
    if request.param == "embedded":
        store = open_store(Settings(embedded_path=":memory:"))
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


def test_an_attempt_that_died_before_its_write_is_carried_out_by_the_retry(app, keyed_store):
    keys = app.extensions["desks.idempotency"]

    def die(desk_id):
        raise ConnectionError("the process died here, the key reserved, nothing written")

    with pytest.raises(ConnectionError):
        keys.create_once("k-5", fingerprint(DESK), die)
    reserved = keyed_store.database[KEYS].find_one({"_id": "k-5"})["desk_id"]
    response = post(app.test_client(), DESK, "k-5")
    assert (response.status_code, response.json["id"]) == (201, str(reserved))
    assert keyed_store.desks.count_documents({}) == 1


def test_an_attempt_that_died_after_its_write_is_answered_with_its_desk(app, keyed_store):
    keys = app.extensions["desks.idempotency"]
    written = []

    def write_then_die(desk_id):
        written.append(DeskRepository(keyed_store.desks).create(DESK, desk_id))
        raise ConnectionError("the process died here, the desk written, no answer stored")

    with pytest.raises(ConnectionError):
        keys.create_once("k-6", fingerprint(DESK), write_then_die)
    response = post(app.test_client(), DESK, "k-6")
    assert (response.status_code, response.json["id"]) == (201, str(written[0]["_id"]))
    assert response.headers["Idempotent-Replayed"] == "true"
    assert keyed_store.desks.count_documents({}) == 1


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
