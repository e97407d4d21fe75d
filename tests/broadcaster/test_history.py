"""Retained history: what a reconnecting client can be given, and when it must reset."""

from __future__ import annotations

import pytest

from broadcaster.history import History, SequenceGap


def filled(retain=5, count=8):
    history = History(retain)
    history.start("e1", 0)
    for seq in range(1, count + 1):
        history.add(seq, f"event {seq}")
    return history


def test_since_returns_exactly_the_events_after():
    history = filled()
    assert history.since(6) == ["event 7", "event 8"]
    assert history.since(8) == []
    assert history.since(3) == ["event 4", "event 5", "event 6", "event 7", "event 8"]


def test_positions_outside_the_window_or_log_cannot_be_served():
    history = filled()
    assert history.since(2) is None  # older than retained
    assert history.since(9) is None  # newer than the head: another log
    assert history.since(5, epoch="other") is None
    assert history.since(5, epoch="e1") == ["event 6", "event 7", "event 8"]


def test_repeats_are_ignored_and_gaps_refused():
    history = filled()
    assert history.add(8, "again") is False
    with pytest.raises(SequenceGap):
        history.add(10, "event 10")
    assert history.head == 8


def test_starting_a_log_midway_serves_only_from_there():
    history = History(10)
    history.start("e2", 100)
    history.add(101, "event 101")
    assert history.since(100) == ["event 101"]
    assert history.since(99) is None
