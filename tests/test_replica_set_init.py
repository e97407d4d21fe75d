"""The replica-set init script, against a scripted admin connection (no mongod runs here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pymongo.errors import OperationFailure

from embedded import EmbeddedClient

PATH = Path(__file__).resolve().parents[1] / "replica-set-init" / "init_replica_set.py"
spec = importlib.util.spec_from_file_location("init_replica_set", PATH)
assert spec is not None and spec.loader is not None
init = importlib.util.module_from_spec(spec)
spec.loader.exec_module(init)


class ScriptedAdmin:
    """Answers admin commands from a script and records what was asked."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []
        self.options = []  # each call's keyword arguments

    def command(self, name, *args, **kwargs):
        self.calls.append((name, args))
        self.options.append(kwargs)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_initiate_sends_the_member_config_the_first_member_first():
    admin = ScriptedAdmin([{"isWritablePrimary": False}, {"ok": 1}])
    assert init.initiate(admin, "rs0", ["mongo:27017", "mongo2:27017"]) is True
    members = [
        {"_id": 0, "host": "mongo:27017", "priority": 2},  # where the first user is made
        {"_id": 1, "host": "mongo2:27017", "priority": 1},
    ]
    assert admin.calls == [
        ("hello", ()),
        ("replSetInitiate", ({"_id": "rs0", "members": members},)),
    ]


def test_initiate_is_idempotent():
    initiated = ScriptedAdmin([{"setName": "rs0"}])  # hello needs no authentication
    assert init.initiate(initiated, "rs0", ["mongo:27017"]) is False
    assert [name for name, _ in initiated.calls] == ["hello"]
    raced = ScriptedAdmin([{}, OperationFailure("already initialized", 23)])
    assert init.initiate(raced, "rs0", ["mongo:27017"]) is False


def test_initiate_says_to_connect_over_localhost_when_refused():
    refused = ScriptedAdmin([{}, OperationFailure("requires authentication", 13)])
    with pytest.raises(init.SetupError, match="localhost"):
        init.initiate(refused, "rs0", ["mongo:27017"])


def test_initiate_tries_again_while_a_member_is_not_up_then_reports_other_failures():
    later = ScriptedAdmin([{}, OperationFailure("NodeNotFound", 74), {"ok": 1}])
    assert init.initiate(later, "rs0", ["mongo:27017"], timeout=30, interval=0) is True
    admin = ScriptedAdmin([{}, OperationFailure("bad config", 93)])
    with pytest.raises(OperationFailure):
        init.initiate(admin, "rs0", ["mongo:27017"])


def test_wait_for_primary_waits_then_returns():
    admin = ScriptedAdmin([{"isWritablePrimary": False}, {"isWritablePrimary": True}])
    init.wait_for_primary(admin, timeout=5, interval=0)
    assert len(admin.calls) == 2


def test_wait_for_primary_gives_up_at_the_deadline():
    admin = ScriptedAdmin([{"isWritablePrimary": False}] * 1000)
    with pytest.raises(TimeoutError):
        init.wait_for_primary(admin, timeout=0, interval=0)


@pytest.mark.parametrize("exists", [False, True])
def test_enable_pre_images_whether_or_not_desks_exists(exists):
    client = EmbeddedClient()
    database = client["desks"]
    if exists:
        database.desks.insert_one({"n": 1})
    init.enable_pre_images(database, "desks")
    assert client.images_enabled("desks", "desks")


SECRET = "s" * 32


def test_the_administrator_is_made_over_the_localhost_exception_once():
    admin = ScriptedAdmin([{"ok": 1}])
    assert init.create_administrator(admin, "admin", SECRET) is True
    assert admin.calls == [("createUser", ("admin",))]
    assert admin.options == [{"pwd": SECRET, "roles": [{"role": "root", "db": "admin"}]}]
    # Once a user exists the exception is closed: an unauthenticated createUser is refused.
    for code in (13, 51003):
        again = ScriptedAdmin([OperationFailure("not authorized", code)])
        assert init.create_administrator(again, "admin", SECRET) is False
    with pytest.raises(OperationFailure):
        init.create_administrator(ScriptedAdmin([OperationFailure("bad", 2)]), "admin", SECRET)


def test_application_users_get_the_desks_database_only_and_are_kept_in_step():
    roles = init.application_roles("desks")
    assert roles == {
        "writer": [{"role": "readWrite", "db": "desks"}],
        "reader": [{"role": "read", "db": "desks"}],
    }
    admin = ScriptedAdmin([{"ok": 1}])
    assert init.ensure_user(admin, "desks", SECRET, roles["writer"]) == "created"
    assert admin.calls == [("createUser", ("desks",))]
    assert admin.options == [{"pwd": SECRET, "roles": [{"role": "readWrite", "db": "desks"}]}]
    # A second run: the user exists; its password and roles are brought to the settings'.
    rerun = ScriptedAdmin([OperationFailure("User already exists", 51003), {"ok": 1}])
    assert init.ensure_user(rerun, "desks", SECRET, roles["writer"]) == "updated"
    assert [name for name, _ in rerun.calls] == ["createUser", "updateUser"]
    assert rerun.options[1] == {"pwd": SECRET, "roles": roles["writer"]}


@pytest.mark.parametrize("value", ["", "short", "s" * 31, "p@ss/word:" + "x" * 30])
def test_a_password_that_cannot_go_into_a_uri_as_it_is_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv("DESKS_MONGO_PASSWORD", value)
    with pytest.raises(init.SetupError, match="DESKS_MONGO_PASSWORD"):
        init.password("DESKS_MONGO_PASSWORD")


def test_without_its_passwords_the_initialiser_exits_2_before_connecting(monkeypatch, caplog):
    for name in ("MONGO_ADMIN_PASSWORD", "DESKS_MONGO_PASSWORD", "DESKS_MONGO_READER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(init, "connect", lambda *_: pytest.fail("connected without passwords"))
    assert init.main() == 2
    assert "MONGO_ADMIN_PASSWORD" in caplog.text


class FakeClient:
    """A MongoClient whose admin database answers from a script."""

    def __init__(self, admin):
        self.admin = admin

    def __getitem__(self, name):
        return name

    def close(self):
        pass


@pytest.mark.parametrize("exists", [True, False], ids=["rerun", "first run"])
def test_the_administrator_is_made_over_localhost_only_the_first_time(monkeypatch, exists):
    for name in ("MONGO_ADMIN_PASSWORD", "DESKS_MONGO_PASSWORD", "DESKS_MONGO_READER_PASSWORD"):
        monkeypatch.setenv(name, SECRET)
    local_replies = [{"setName": "rs0"}]
    if not exists:
        local_replies += [{"isWritablePrimary": True}, {"ok": 1}]  # wait, then createUser
    local = FakeClient(ScriptedAdmin(local_replies))
    users = FakeClient(ScriptedAdmin([{"ok": 1}, {"ok": 1}]))
    monkeypatch.setattr(init, "connect", lambda *_args: local)
    monkeypatch.setattr(init, "administrator_exists", lambda *_args: exists)
    monkeypatch.setattr(init, "connect_set", lambda *_args: users)
    monkeypatch.setattr(init, "enable_pre_images", lambda *_args: None)
    assert init.main() == 0
    over_localhost = [name for name, _ in local.admin.calls]
    # A rerun (after a drill the primary may be another member) goes through the set only.
    assert over_localhost == (["hello"] if exists else ["hello", "hello", "createUser"])
    assert [name for name, _ in users.admin.calls] == ["createUser", "createUser"]
