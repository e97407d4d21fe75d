"""Settings come from the environment, with a clear error naming a bad variable."""

from __future__ import annotations

import re

import pytest

from desks.settings import ENVIRONMENT, Settings, SettingsError
from tests.processes import ROOT


def test_defaults_are_local_and_embedded():
    settings = Settings.from_env({})
    assert settings.embedded
    assert (settings.api_host, settings.api_port, settings.database) == ("127.0.0.1", 8000, "desks")


def test_embedded_store_is_a_file_under_the_working_directory_by_default():
    settings = Settings.from_env({})
    assert settings.embedded_path == ".desks/embedded.sqlite3"
    assert settings.embedded_synchronous == "FULL"
    assert settings.shared_store


def test_embedded_store_in_memory_is_private_to_one_process():
    settings = Settings.from_env(
        {"DESKS_EMBEDDED_PATH": ":memory:", "DESKS_EMBEDDED_SYNCHRONOUS": "normal"}
    )
    assert (settings.embedded_path, settings.embedded_synchronous) == (":memory:", "NORMAL")
    assert not settings.shared_store


def test_values_are_read_and_typed():
    settings = Settings.from_env(
        {"MONGODB_URI": "mongodb://db/?replicaSet=rs0", "DESKS_API_PORT": "9000", "DESKS_DB": "x"}
    )
    assert not settings.embedded
    assert (settings.api_port, settings.database) == (9000, "x")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DESKS_API_PORT", "eighty"),
        ("DESKS_API_PORT", "70000"),
        ("DESKS_SERVER_SELECTION_TIMEOUT_MS", "0"),
        ("DESKS_DB", "bad.name"),
        ("DESKS_LOG_LEVEL", "LOUD"),
        ("DESKS_BROADCASTER_URL", "http://x"),
        ("DESKS_PUBLIC_BROADCASTER_URL", "localhost:8765"),
        ("DESKS_HISTORY_SIZE", "0"),
        ("DESKS_BROADCASTER_PORT", "-1"),
        ("DESKS_EMBEDDED_SYNCHRONOUS", "off"),
        ("DESKS_EMBEDDED_HISTORY_SIZE", "0"),
        ("DESKS_AHEAD_WAIT_SECONDS", "31"),
    ],
)
def test_invalid_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_settings_pass_to_a_child_process_through_the_environment_unchanged():
    settings = Settings(
        mongodb_uri="mongodb://db:27017/?replicaSet=rs0",
        database="registry",
        api_port=0,
        embedded_path="/tmp/x.sqlite3",
        embedded_synchronous="NORMAL",
        lease_ttl_seconds=0.6,
        allowed_hosts=("desks.example", ".corp.test"),
        ahead_wait_seconds=2.5,
        jwt_secret="j" * 32,
        jwt_issuer="https://id.example",
        anonymous_reads=True,
        cors_origins=("https://a.example", "http://b.example:8080"),
        log_format="json",
        public_broadcaster_url="wss://desks.example/live/",
    )
    assert Settings.from_env(settings.environ()) == settings
    assert Settings.from_env(Settings().environ()) == Settings()
    fields = set(Settings.__dataclass_fields__)
    assert set(ENVIRONMENT) == fields  # every setting has its variable


def test_every_variable_is_documented_in_the_configuration_page_and_env_example():
    page = (ROOT / "docs" / "configuration.md").read_text()
    example = (ROOT / ".env.example").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", page, re.M))
    defaults = Settings().environ()
    for variable in ENVIRONMENT.values():
        assert f"`{variable}`" in page, variable
        documented = rows[variable].strip().strip("`")
        default = defaults.get(variable)
        if default is None:
            assert documented == "—", (variable, documented)
        elif default.replace(".", "", 1).isdigit():
            assert float(documented) == float(default), (variable, documented, default)
        else:
            assert documented.lower() == default.lower(), (variable, documented, default)
        assert variable in example, variable
