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

    def command(self, name, *args, **kwargs):
        self.calls.append((name, args))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_initiate_sends_the_member_config():
    admin = ScriptedAdmin([{"ok": 1}])
    assert init.initiate(admin, "rs0", ["mongo:27017"]) is True
    assert admin.calls == [
        ("replSetInitiate", ({"_id": "rs0", "members": [{"_id": 0, "host": "mongo:27017"}]},))
    ]


def test_initiate_is_idempotent():
    admin = ScriptedAdmin([OperationFailure("already initialized", 23)])
    assert init.initiate(admin, "rs0", ["mongo:27017"]) is False


def test_initiate_reports_other_failures():
    admin = ScriptedAdmin([OperationFailure("bad config", 93)])
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
