"""A desk name written around the API cannot drive or fool an operator's terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from desks.terminal import UNSAFE, printable, printable_json
from embedded import EmbeddedClient
from tests.conftest import free_port, wait_until
from tests.processes import Running, desks_env

# ESC [2J (clear screen), CSI as one C1 character, DEL, a right-to-left override, a zero-width
# space, a BOM and a carriage return that would let the line overwrite itself.
HOSTILE = "Mesa \x1b[2J\x9b31m\x7f\u202eatsE\u200b\ufeff\rok 🪑"


def test_printable_escapes_what_drives_a_terminal_and_keeps_the_rest():
    text = printable(HOSTILE)
    assert not UNSAFE.search(text)
    assert text == "Mesa \\x1b[2J\\x9b31m\\x7f\\u202eatsE\\u200b\\ufeff\\rok 🪑"


def test_what_the_api_refuses_in_names_is_escaped_in_print_too():
    # Word joiners and other format characters hide inside a name ("Mesa\u2060 Ejecutiva" reads
    # as another desk's); line separators split JSON lines for str.splitlines().
    hidden = "\u00ad\u180e\u2060\u2064\u206f\ufff9\u2028\u2029"
    assert printable(hidden) == "\\xad\\u180e\\u2060\\u2064\\u206f\\ufff9\\u2028\\u2029"
    kept = "Señor 🪑 ✏️ 👍🏽"  # letters, emoji, variation selectors, skin tones
    assert printable(kept) == kept


def test_printable_json_is_the_same_value():
    text = printable_json(json.dumps({"name": HOSTILE}, ensure_ascii=False))
    assert not UNSAFE.search(text)
    assert json.loads(text) == {"name": HOSTILE}
    assert "🪑" in text  # not ASCII-escaped: people read it


@pytest.fixture
def hostile_desk(tmp_path):
    """`desks up` with a desk named HOSTILE written straight into its store file."""
    running = Running(free_port(), tmp_path / "up.log")
    try:
        running.wait_ready()
        client = EmbeddedClient(str(running.store))
        try:
            client["desks"]["desks"].insert_one(
                {"name": HOSTILE, "width": 1, "height": 1, "version": 1}
            )
        finally:
            client.close()
        yield running
    finally:
        running.close()


def desks_out(*args: str, timeout: float = 30) -> str:
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *args],
        capture_output=True,
        text=True,
        env=desks_env(),
        timeout=timeout,
    ).stdout


def test_replay_prints_no_raw_control_or_bidi_character(hostile_desk):
    api = hostile_desk.api

    def events():
        return desks_out("replay", "--api", api)

    wait_until(lambda: "Mesa" in events(), timeout=20)
    for out in (events(), desks_out("replay", "--api", api, "--as-of", "1")):
        assert out and not UNSAFE.search(out.replace("\n", ""))
        names = [
            json.loads(line).get("name") or json.loads(line)["desk"]["name"]
            for line in out.splitlines()
        ]
        assert names == [HOSTILE]


def test_consume_prints_no_raw_control_or_bidi_character(hostile_desk):
    command = [sys.executable, "-m", "launcher.cli", "consume", "--url", hostile_desk.ws]
    command += ["--after", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=desks_env()
    ) as process:
        assert process.stdout is not None
        deadline = threading.Timer(30, process.kill)  # readline() then ends: no hang
        deadline.start()
        try:
            lines: list[bytes] = []
            while not lines or not lines[-1].lstrip().startswith("🎉".encode()):
                lines.append(process.stdout.readline())
                assert lines[-1], f"consume ended before printing the desk: {lines}"
        finally:
            deadline.cancel()
            process.kill()
    block = [line.decode().rstrip("\n") for line in lines]
    block = block[next(n for n, line in enumerate(block) if "atsE" in line) :]
    assert not any(UNSAFE.search(line) for line in block)
    # The seed system's block, one line each: the name's CR and ESC escaped, not obeyed.
    head, ident, name, size, available = block
    assert "🪑 Nueva mesa creada: Mesa \\x1b[2J\\x9b31m\\x7f\\u202eatsE" in head
    assert head.endswith("\\ufeff\\rok 🪑 (1x1cm)")
    assert ident.startswith("   🆔 ID: ") and name.startswith("   🏷️  Nombre: Mesa \\x1b")
    assert size == "   📏 Dimensiones: 1cm x 1cm" and available == "   🎉 ¡Nueva mesa disponible!"
