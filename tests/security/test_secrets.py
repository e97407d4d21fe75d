"""A password in a URI is never echoed: not in a message about the URI, not in a log line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from desks.redact import redacted
from desks.settings import Settings, SettingsError
from tests.processes import desks_env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MONGODB_URI", "mongo://admin:s3cret@db.example:27017/"),
        ("MONGODB_URI", "mongodb://admin:s3cret@db.example:port/"),
        ("MONGODB_URI", "mongodb://admin:s3c@ret@db.example/"),
        ("DESKS_BROADCASTER_URL", "http://admin:s3cret@ws.example/"),
    ],
)
def test_a_bad_uri_is_refused_without_its_password(name, value):
    with pytest.raises(SettingsError, match=name) as refused:
        Settings.from_env({name: value})
    assert "s3cret" not in str(refused.value) and "ret@" not in str(refused.value)


def test_desks_up_exits_2_without_echoing_the_password():
    result = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "up"],
        capture_output=True,
        text=True,
        env=desks_env(MONGODB_URI="mongo://admin:s3cret@db.example:27017/"),
        timeout=30,
    )
    assert result.returncode == 2
    assert "MONGODB_URI" in result.stderr and "admin:***@db.example" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_redacted_keeps_everything_but_the_password():
    assert (
        redacted("mongodb://u:p@h1,h2/db?replicaSet=rs") == "mongodb://u:***@h1,h2/db?replicaSet=rs"
    )
    assert redacted("mongodb://h/db") == "mongodb://h/db"
    assert redacted("got 'x://a:b@c' and 'y://d:e@f'") == "got 'x://a:***@c' and 'y://d:***@f'"
