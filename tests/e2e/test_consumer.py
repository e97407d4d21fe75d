"""`desks consume` as a real process: the seed's output, and nothing lost across restarts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from desks.settings import Settings
from tests.conftest import running_system, wait_until
from tests.e2e.conftest import http

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def consume(tmp_path):
    processes = []

    def start(url, *args):
        out = tmp_path / f"consume-{len(processes)}.out"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"}
        with out.open("w") as stdout:
            process = subprocess.Popen(
                [sys.executable, "-m", "launcher.cli", "consume", "--url", url, *args],
                stdout=stdout,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        processes.append(process)
        return lambda: out.read_text(encoding="utf-8")

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def test_seed_commands_print_the_seed_blocks(system, consume):
    output = consume(system.broadcaster_url)
    wait_until(lambda: "✅ Conectado al servidor WebSocket" in output())
    status, desk = http(
        "POST",
        f"{system.api_url}/api/desk/",
        {"name": "Mesa Ejecutiva", "width": 180, "height": 90},
    )
    http("PATCH", f"{system.api_url}/api/desk/{desk['id']}", {"width": 200})
    http("DELETE", f"{system.api_url}/api/desk/{desk['id']}")
    wait_until(lambda: "Mesa eliminada" in output())
    text = re.sub(r"^\[\d\d:\d\d:\d\d\]", "[HH:MM:SS]", output(), flags=re.MULTILINE)
    assert text == (
        "🎯 Consumidor de Notificaciones de Mesas\n"
        "✅ Conectado al servidor WebSocket\n"
        "[HH:MM:SS] 🪑 Nueva mesa creada: Mesa Ejecutiva (180x90cm)\n"
        f"   🆔 ID: {desk['id']}\n"
        "   🏷️  Nombre: Mesa Ejecutiva\n"
        "   📏 Dimensiones: 180cm x 90cm\n"
        "   🎉 ¡Nueva mesa disponible!\n"
        "\n"
        "[HH:MM:SS] ✏️  Mesa actualizada: Mesa Ejecutiva (200x90cm)\n"
        f"   🆔 ID: {desk['id']}\n"
        "   🔄 Ancho: 180cm → 200cm\n"
        "   📌 Versión: 2\n"
        "\n"
        "[HH:MM:SS] 🗑️  Mesa eliminada: Mesa Ejecutiva\n"
        f"   🆔 ID: {desk['id']}\n"
        "   👋 ¡Mesa retirada del inventario!\n"
        "\n"
    )


def test_broadcaster_restart_loses_nothing_on_screen(system, consume):
    output = consume(system.broadcaster_url)
    wait_until(lambda: "Conectado" in output())
    for n in range(3):
        http("POST", f"{system.api_url}/api/desks", {"name": f"Antes {n}", "width": 1, "height": 1})
    wait_until(lambda: output().count("Nueva mesa creada") == 3)

    system.broadcaster.stop()
    for n in range(3):  # written while nobody can be told
        http(
            "POST", f"{system.api_url}/api/desks", {"name": f"Durante {n}", "width": 1, "height": 1}
        )
    system.restart_broadcaster()
    wait_until(lambda: output().count("Conectado") == 2, timeout=20)
    http("POST", f"{system.api_url}/api/desks", {"name": "Después", "width": 1, "height": 1})

    wait_until(lambda: "Después" in output(), timeout=20)
    names = re.findall(r"Nueva mesa creada: (.+) \(", output())
    assert names == [
        "Antes 0",
        "Antes 1",
        "Antes 2",
        "Durante 0",
        "Durante 1",
        "Durante 2",
        "Después",
    ]
    assert "Historial no disponible" not in output()


def test_consume_after_replays_then_follows(system, consume):
    for n in range(3):
        http("POST", f"{system.api_url}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
    wait_until(lambda: system.broadcaster_server.history.head == 3)
    output = consume(system.broadcaster_url, "--after", "1", "--lang", "en")
    wait_until(lambda: output().count("New desk created") == 2)
    assert re.findall(r"New desk created: (\w+)", output()) == ["D1", "D2"]


def test_a_new_log_is_printed_from_its_first_event(consume):
    def settings(broadcaster_port):
        return Settings(embedded_path=":memory:", api_port=0, broadcaster_port=broadcaster_port)

    with running_system(settings(0)) as first:
        output = consume(first.broadcaster_url)
        wait_until(lambda: "Conectado" in output())
        http("POST", f"{first.api_url}/api/desks", {"name": "Vieja", "width": 1, "height": 1})
        wait_until(lambda: "Vieja" in output())

    # A new in-memory store on the same port: a new log, a new epoch.
    with running_system(settings(first.broadcaster_port)) as second:
        for name in ("Nueva1", "Nueva2"):
            http("POST", f"{second.api_url}/api/desks", {"name": name, "width": 1, "height": 1})
        wait_until(lambda: "Nueva2" in output(), timeout=20)
        assert re.findall(r"Nueva mesa creada: (\w+)", output()) == ["Vieja", "Nueva1", "Nueva2"]
        assert "Nuevo registro de eventos" in output()
        assert "Historial no disponible" not in output()
