"""How the console consumer prints events: the seed system's lines, in Spanish or English."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desks.events import (
    DeskCreated,
    DeskDeleted,
    DeskSnapshot,
    DeskUpdated,
    Event,
    Resync,
    Snapshot,
)
from desks.terminal import printable

TEXT: dict[str, dict[str, Any]] = {
    "es": {
        "banner": "🎯 Consumidor de Notificaciones de Mesas",
        "connected": "✅ Conectado al servidor WebSocket",
        "lost": "⚠️  Conexión perdida ({error}); reintentando en {delay:.1f}s",
        "reset": "🔄 Historial no disponible: recarga el listado de mesas (seq {head})",
        "new_log": "🆕 Nuevo registro de eventos: se muestra desde el principio",
        "unreadable": "⚠️  Mensaje ilegible omitido{where}: {error}",
        "resync": "🔄 Resincronización: puede haber cambios sin notificar; recarga el listado",
        "snapshot": "📸 Instantánea del registro: siguen todas las mesas actuales",
        "created": "🪑 Nueva mesa creada: {name} ({width}x{height}cm)",
        "updated": "✏️  Mesa actualizada: {name} ({width}x{height}cm)",
        "deleted": "🗑️  Mesa eliminada: {name}",
        "id": "🆔 ID: {id}",
        "name": "🏷️  Nombre: {name}",
        "size": "📏 Dimensiones: {width}cm x {height}cm",
        "available": "🎉 ¡Nueva mesa disponible!",
        "change": "🔄 {label}: {old} → {new}",
        "change_new": "🔄 {label}: {new}",
        "version": "📌 Versión: {version}",
        "gone": "👋 ¡Mesa retirada del inventario!",
        "labels": {"name": "Nombre", "width": "Ancho", "height": "Alto"},
    },
    "en": {
        "banner": "🎯 Desk Notifications Consumer",
        "connected": "✅ Connected to the WebSocket server",
        "lost": "⚠️  Connection lost ({error}); retrying in {delay:.1f}s",
        "reset": "🔄 History unavailable: reload the desk list (seq {head})",
        "new_log": "🆕 New event log: showing it from the start",
        "unreadable": "⚠️  Unreadable message skipped{where}: {error}",
        "resync": "🔄 Resync: some changes may not have been announced; reload the desk list",
        "snapshot": "📸 Registry snapshot: every current desk follows",
        "created": "🪑 New desk created: {name} ({width}x{height}cm)",
        "updated": "✏️  Desk updated: {name} ({width}x{height}cm)",
        "deleted": "🗑️  Desk deleted: {name}",
        "id": "🆔 ID: {id}",
        "name": "🏷️  Name: {name}",
        "size": "📏 Dimensions: {width}cm x {height}cm",
        "available": "🎉 New desk available!",
        "change": "🔄 {label}: {old} → {new}",
        "change_new": "🔄 {label}: {new}",
        "version": "📌 Version: {version}",
        "gone": "👋 Desk removed from the inventory!",
        "labels": {"name": "Name", "width": "Width", "height": "Height"},
    },
}
INDENT = "   "


def number(value: Any) -> str:
    """Print 180 as 180 and 75.5 as 75.5 (never 180.0); any other value terminal-safe."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    # Values come from the store, written around the API too: no control, bidi or zero-width
    # character reaches the terminal raw (a newline in a name would forge a line).
    return printable(str(value))


def clock(at: str) -> str:
    """Return HH:MM:SS of an ISO 8601 UTC time, in this machine's local time."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")


def render(event: Event, lang: str = "es", previous: dict[str, Any] | None = None) -> str:
    """Return the block printed for `event`; `previous` is the desk as last seen, if known."""
    text = TEXT[lang]
    if isinstance(event, Resync):
        return f"[{clock(event.at)}] {text['resync']}"
    if isinstance(event, Snapshot):
        return f"[{clock(event.at)}] {text['snapshot']}"
    if isinstance(event, DeskSnapshot):
        return ""  # one line per desk would flood the console: the marker said it all
    assert isinstance(event, DeskCreated | DeskUpdated | DeskDeleted)
    desk = event.desk
    values = {
        "id": printable(event.desk_id),
        "name": number(desk.get("name", "?")),
        "width": number(desk.get("width", "?")),
        "height": number(desk.get("height", "?")),
        "version": event.version,
    }
    if isinstance(event, DeskCreated):
        head = text["created"]
        body = [text[key].format(**values) for key in ("id", "name", "size", "available")]
    elif isinstance(event, DeskUpdated):
        head = text["updated"]
        body = [
            text["id"].format(**values),
            *_changes(event, previous, text),
            text["version"].format(**values),
        ]
    else:
        head = text["deleted"]
        body = [text[key].format(**values) for key in ("id", "gone")]
    lines = [f"[{clock(event.at)}] {head.format(**values)}"]
    return "\n".join(lines + [INDENT + line for line in body])


def _changes(
    event: DeskUpdated, previous: dict[str, Any] | None, text: dict[str, Any]
) -> list[str]:
    changed = event.changes.get("set", {})
    known = {**(previous or {}), **event.changes.get("previous", {})}
    lines = []
    for name, label in text["labels"].items():
        if name not in changed:
            continue
        unit = "" if name == "name" else "cm"
        new = number(changed[name]) + unit
        if name in known:
            old = number(known[name]) + unit
            lines.append(text["change"].format(label=label, old=old, new=new))
        else:
            lines.append(text["change_new"].format(label=label, new=new))
    return lines
