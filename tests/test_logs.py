"""Log lines cannot be forged: whatever a request carries is escaped, one line per record."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from desks.logs import JsonFormatter, LogfmtFormatter


def line(**fields) -> str:
    record = logging.LogRecord("desks.api", logging.INFO, __file__, 1, "request", None, None)
    record.__dict__.update(fields)
    return LogfmtFormatter().format(record)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("/api/desks", "/api/desks"),
        ("a\r\ntime=x level=error msg=forged", '"a\\r\\ntime=x level=error msg=forged"'),
        ("\x1b[2J\x1b[31mred", '"\\x1b[2J\\x1b[31mred"'),
        ("\x00\x07\x7f\x85\x9b", '"\\x00\\x07\\x7f\\x85\\x9b"'),
        ("exe.\u202egnp", '"exe.\\u202egnp"'),
        ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'),
        ("", '""'),
    ],
)
def test_values_are_escaped_so_a_record_stays_one_honest_line(value, written):
    text = line(path=value)
    assert text.endswith(f" path={written}")
    assert "\n" not in text and "\r" not in text and "\x1b" not in text


def test_a_request_path_with_cr_and_esc_is_logged_escaped(client, caplog):
    with caplog.at_level(logging.INFO, logger="desks.api"):
        client.get("/api/desks/a%0D%0Alevel=error%1B[2J")
    [record] = [r for r in caplog.records if r.getMessage() == "request"]
    text = LogfmtFormatter().format(record)
    assert 'path="/api/desks/a\\r\\nlevel=error\\x1b[2J"' in text
    assert "\r" not in text and "\x1b" not in text


def test_json_lines_carry_time_level_service_message_and_fields():
    record = logging.LogRecord("desks.watcher", logging.INFO, __file__, 1, "logged", None, None)
    record.__dict__.update(seq=7, desk_id="a\u202eb\r\nforged")
    text = JsonFormatter("watcher").format(record)
    assert "\n" not in text and "\u202e" not in text  # escaped, one line
    data = json.loads(text)
    assert data["level"] == "info" and data["service"] == "watcher"
    assert data["logger"] == "desks.watcher" and data["message"] == "logged"
    assert (data["seq"], data["desk_id"]) == (7, "a\u202eb\r\nforged")
    assert data["time"].endswith("Z")


def test_desks_log_format_json_makes_a_process_write_json_lines(tmp_path):
    env = {
        **os.environ,
        "DESKS_LOG_FORMAT": "json",
        "DESKS_EMBEDDED_PATH": str(tmp_path / "store.sqlite3"),
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(  # a broadcaster on a busy port: logs why, exits 1
            [sys.executable, "-m", "launcher.cli", "broadcaster", "--port", port],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line["service"] == "broadcaster" for line in lines)
    assert any(line["level"] == "error" for line in lines)


def test_every_request_gets_an_id_echoed_and_logged_with_the_desk_it_wrote(client, caplog):
    with caplog.at_level(logging.INFO, logger="desks.api"):
        created = client.post("/api/desks", json={"name": "A", "width": 1, "height": 1})
        given = client.get("/api/desks", headers={"X-Request-Id": "trace-42"})
        forged = client.get("/api/desks", headers={"X-Request-Id": "<script> " * 20})
    assert given.headers["X-Request-Id"] == "trace-42"
    assert len(forged.headers["X-Request-Id"]) == 32  # replaced by one of its own
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert [r.request_id for r in lines] == [
        created.headers["X-Request-Id"],
        "trace-42",
        forged.headers["X-Request-Id"],
    ]
    assert lines[0].desk_id == created.json["id"]
