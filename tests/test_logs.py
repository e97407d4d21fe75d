"""Log lines cannot be forged: whatever a request carries is escaped, one line per record."""

from __future__ import annotations

import logging

import pytest

from desks.logs import LogfmtFormatter


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
