"""The consumer's bookkeeping: where it resumes, what it skips, what it survives."""

from __future__ import annotations

import json

from desks.consumer import NEW_LOG, Consumer, subscribe_url
from desks.events import DeskCreated, DeskSnapshot, DeskUpdated

DESK = {"id": "a" * 24, "name": "Mesa", "width": 1, "height": 2, "version": 1}


def event(seq):
    return DeskCreated(
        seq=seq, at="2026-11-28T14:30:45.000Z", desk_id="a" * 24, version=1, desk=DESK
    )


def consumer(after=None):
    lines: list[str] = []
    return Consumer("ws://127.0.0.1:8765/", after, "es", lines.append), lines


def test_resumes_after_the_last_printed_seq_in_the_same_log():
    c, lines = consumer()
    c._handle(json.dumps({"type": "hello", "head": 4, "epoch": "e1"}))
    c._handle(event(5).encode())
    assert c.last_seq == 5
    assert subscribe_url(c.url, c.last_seq, c.epoch) == "ws://127.0.0.1:8765/?after=5&epoch=e1"
    assert len(lines) == 1


def test_repeats_are_not_printed_twice():
    c, lines = consumer(after=0)
    for seq in (1, 2, 2, 1, 3):
        c._handle(event(seq).encode())
    assert len(lines) == 3


def test_reset_moves_to_the_head_and_says_so():
    c, lines = consumer(after=10)
    c._handle(json.dumps({"type": "reset", "head": 3, "epoch": "e2"}))
    assert (c.last_seq, c.epoch) == (3, "e2")
    assert "Historial no disponible" in lines[-1]


def test_garbage_from_the_server_is_one_warning_line_each_and_the_loop_goes_on():
    c, lines = consumer(after=0)
    junk = ["not json", "[]", '{"type": "hello"}', '{"type": "desk_created"}', "null"]
    for message in junk:
        c._handle(message)
    bad_at = {**event(1).to_json(), "at": "yesterday"}
    list_changes = {**event(2).to_json(), "type": "desk_updated", "changes": ["width"]}
    odd_set = {**list_changes, "seq": 3, "changes": {"set": ["width"]}}
    for message in (bad_at, list_changes, odd_set):
        c._handle(json.dumps(message))
    c._handle(event(4).encode())
    assert len(lines) == len(junk) + 4
    assert all(line.startswith("⚠️  Mensaje ilegible omitido") for line in lines[:-1])
    assert "(seq 1)" in lines[len(junk)] and "(seq 3)" in lines[-2]
    assert "Nueva mesa creada" in lines[-1]
    assert c.last_seq == 4


def test_a_new_log_is_printed_from_its_start():
    c, lines = consumer()
    c._handle(json.dumps({"type": "hello", "head": 40, "epoch": "old"}))
    c._handle(event(41).encode())
    # An embedded store started afresh: the broadcaster now follows another log.
    assert c._handle(json.dumps({"type": "hello", "head": 2, "epoch": "new"})) is NEW_LOG
    assert (c.last_seq, c.epoch) == (0, "new")
    assert subscribe_url(c.url, c.last_seq, c.epoch) == "ws://127.0.0.1:8765/?after=0&epoch=new"
    c._handle(event(1).encode())
    assert c.last_seq == 1 and lines[-1].count("Nueva mesa creada") == 1


def test_a_hello_without_a_log_yet_changes_nothing():
    c, lines = consumer(after=5)
    c._handle(json.dumps({"type": "hello", "head": None, "epoch": None}))
    assert (c.last_seq, c.epoch, lines) == (5, None, [])


def test_a_desk_filter_prints_that_desk_and_resyncs_only():
    lines: list[str] = []
    c = Consumer("ws://127.0.0.1:8765/", 0, "en", lines.append, desk="b" * 24)
    other = event(1)
    mine = DeskCreated(2, "2026-11-28T14:30:45.000Z", "b" * 24, 1, {**DESK, "id": "b" * 24})
    resync = (
        '{"type": "resync", "seq": 3, "at": "2026-11-28T14:30:46.000Z", "reason": "invalidated"}'
    )
    for message in (other.encode(), mine.encode(), resync):
        c._handle(message)
    assert len(lines) == 2 and "New desk created" in lines[0] and "Resync" in lines[1]
    assert c.last_seq == 3  # the other desk's event was seen, just not shown


def test_a_snapshot_is_one_line_and_its_desks_are_remembered_not_printed():
    lines: list[str] = []
    c = Consumer("ws://127.0.0.1:8765/", 0, "es", lines.append)
    at = "2026-11-28T14:30:45.000Z"
    c._handle(json.dumps({"type": "snapshot", "seq": 1, "at": at, "reason": "history_lost"}))
    c._handle(DeskSnapshot(2, at, "a" * 24, 1, DESK).encode())
    changes = {"set": {"width": 5, "version": 2}, "removed": []}
    c._handle(DeskUpdated(3, at, "a" * 24, 2, {**DESK, "width": 5}, changes=changes).encode())
    assert len(lines) == 2
    assert "Instantánea del registro" in lines[0]
    assert "Ancho: 1cm → 5cm" in lines[1]  # the old width came from the snapshot
