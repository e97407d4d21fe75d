"""The console consumer's output reproduces the seed system's lines."""

from __future__ import annotations

import time

import pytest

from desks.console import render
from desks.events import DeskCreated, DeskDeleted, DeskUpdated

DESK_ID = "673a2f1b8e4d2a1c3b5e6f7a"
DESK = {"id": DESK_ID, "name": "Mesa Ejecutiva", "width": 180, "height": 90, "version": 1}
AT = "2026-11-28T14:30:45.000Z"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_created_block_matches_the_seed_system_line_for_line():
    event = DeskCreated(seq=1, at=AT, desk_id=DESK_ID, version=1, desk=DESK)
    assert render(event).splitlines() == [
        "[14:30:45] 🪑 Nueva mesa creada: Mesa Ejecutiva (180x90cm)",
        "   🆔 ID: 673a2f1b8e4d2a1c3b5e6f7a",
        "   🏷️  Nombre: Mesa Ejecutiva",
        "   📏 Dimensiones: 180cm x 90cm",
        "   🎉 ¡Nueva mesa disponible!",
    ]


def test_updated_block_shows_old_and_new_values():
    desk = {**DESK, "width": 200.0, "version": 2}
    changes = {"set": {"width": 200.0, "version": 2}, "removed": [], "previous": {"width": 180}}
    event = DeskUpdated(seq=2, at=AT, desk_id=DESK_ID, version=2, desk=desk, changes=changes)
    assert render(event).splitlines() == [
        "[14:30:45] ✏️  Mesa actualizada: Mesa Ejecutiva (200x90cm)",
        "   🆔 ID: 673a2f1b8e4d2a1c3b5e6f7a",
        "   🔄 Ancho: 180cm → 200cm",
        "   📌 Versión: 2",
    ]


def test_updated_block_uses_the_last_seen_desk_when_the_event_has_no_old_values():
    event = DeskUpdated(
        seq=2,
        at=AT,
        desk_id=DESK_ID,
        version=2,
        desk={**DESK, "name": "Nueva"},
        changes={"set": {"name": "Nueva"}},
    )
    assert "   🔄 Nombre: Mesa Ejecutiva → Nueva" in render(event, previous=DESK).splitlines()
    assert "   🔄 Nombre: Nueva" in render(event).splitlines()


def test_deleted_block_names_the_desk():
    event = DeskDeleted(seq=3, at=AT, desk_id=DESK_ID, version=2, desk=DESK)
    assert render(event).splitlines() == [
        "[14:30:45] 🗑️  Mesa eliminada: Mesa Ejecutiva",
        "   🆔 ID: 673a2f1b8e4d2a1c3b5e6f7a",
        "   👋 ¡Mesa retirada del inventario!",
    ]


def test_english_output():
    event = DeskCreated(seq=1, at=AT, desk_id=DESK_ID, version=1, desk={**DESK, "height": 75.5})
    assert render(event, "en").splitlines()[0] == (
        "[14:30:45] 🪑 New desk created: Mesa Ejecutiva (180x75.5cm)"
    )
