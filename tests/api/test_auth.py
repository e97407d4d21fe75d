"""Bearer tokens on the REST API: 401 without a usable token, 403 without the scope."""

from __future__ import annotations

import time
import warnings

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api import create_app
from desks.auth import Verifier, mint

SECRET = "s" * 32
BODY = {"name": "Mesa", "width": 180, "height": 90}


@pytest.fixture
def secured(store):
    app = create_app({"TESTING": True, "VERIFIER": Verifier(secret=SECRET)}, store=store)
    return app.test_client()


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def token(*scopes, ttl=60, key=SECRET, **claims):
    return mint(key, scopes, ttl, **claims)


def in_a_minute():
    return time.time() + 60


def hs512(claims):
    with warnings.catch_warnings():  # the right secret, the wrong algorithm: still refused
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, SECRET, "HS512")


def test_no_token_is_401_with_a_challenge_and_a_json_reason(secured):
    response = secured.post("/api/desks", json=BODY)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="desks"'
    assert response.json["message"] == "a bearer token is required"
    assert secured.get("/api/desks").status_code == 401  # reads need a token too


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("malformed", lambda: "not.a.jwt"),
        ("expired", lambda: mint(SECRET, ["desks:write"], -60)),
        ("wrongly signed", lambda: mint("x" * 32, ["desks:write"], 60)),
        (
            "alg none",
            lambda: jwt.encode({"scope": "desks:write", "exp": in_a_minute()}, None, "none"),
        ),
        ("no expiry", lambda: jwt.encode({"scope": "desks:write"}, SECRET, "HS256")),
        ("HS512", lambda: hs512({"scope": "desks:write", "exp": in_a_minute()})),
    ],
)
def test_unusable_tokens_are_401_and_change_nothing(secured, store, name, bad):
    bad = bad()  # minted now, so that only its flaw can make it unusable
    response = secured.post("/api/desks", json=BODY, headers=auth(bad))
    assert response.status_code == 401, name
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json["message"]
    assert store.desks.count_documents({}) == 0


def test_a_read_token_reads_but_cannot_write(secured, store):
    reader = auth(token("desks:read"))
    assert secured.get("/api/desks", headers=reader).status_code == 200
    response = secured.post("/api/desks", json=BODY, headers=reader)
    assert response.status_code == 403
    assert 'error="insufficient_scope", scope="desks:write"' in response.headers["WWW-Authenticate"]
    assert store.desks.count_documents({}) == 0


def test_a_write_token_writes(secured):
    writer = auth(token("desks:read", "desks:write"))
    created = secured.post("/api/desks", json=BODY, headers=writer)
    assert created.status_code == 201
    patched = secured.patch(f"/api/desks/{created.json['id']}", json={"width": 1}, headers=writer)
    assert patched.status_code == 200


def test_anonymous_reads_can_be_switched_on(store):
    verifier = Verifier(secret=SECRET, anonymous_reads=True)
    client = create_app({"TESTING": True, "VERIFIER": verifier}, store=store).test_client()
    assert client.get("/api/desks").status_code == 200
    assert client.post("/api/desks", json=BODY).status_code == 401


def test_probes_docs_and_the_dashboard_need_no_token(secured):
    for path in ("/healthz", "/readyz", "/", "/openapi.json", "/docs"):
        assert secured.get(path).status_code == 200, path
    spec = secured.get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearer": []}]


@pytest.fixture(scope="module")
def rsa_keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode(), public.decode()


def test_rs256_checks_signature_issuer_and_audience(store, rsa_keys):
    private, public = rsa_keys
    verifier = Verifier(public_key=public, issuer="https://id.example", audience="desks")
    client = create_app({"TESTING": True, "VERIFIER": verifier}, store=store).test_client()

    def rs256(**claims):
        return auth(token("desks:write", key=private, algorithm="RS256", **claims))

    good = rs256(issuer="https://id.example", audience="desks")
    assert client.post("/api/desks", json=BODY, headers=good).status_code == 201
    for bad in (rs256(issuer="https://evil", audience="desks"), rs256(issuer="https://id.example")):
        assert client.post("/api/desks", json=BODY, headers=bad).status_code == 401
    # HS/RS confusion: the public key used as an HMAC secret is refused (algorithm pinned).
    forged = jwt.encode(
        {
            "scope": "desks:write",
            "exp": time.time() + 60,
            "iss": "https://id.example",
            "aud": "desks",
        },
        "x" * 32,
        "HS256",
    )
    assert client.post("/api/desks", json=BODY, headers=auth(forged)).status_code == 401


def test_a_refused_request_keeps_its_request_id_and_is_counted(secured, caplog):
    with caplog.at_level("INFO", logger="desks.api"):
        response = secured.post("/api/desks", json=BODY, headers={"X-Request-Id": "trace-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-Id"] == "trace-401"  # the caller's, not a new one
    [line] = [r for r in caplog.records if r.getMessage() == "request"]
    assert (line.status, line.request_id) == (401, "trace-401")
