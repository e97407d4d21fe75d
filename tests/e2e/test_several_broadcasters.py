"""One watcher feeding several broadcasters: each serves the same ordered stream."""

from __future__ import annotations

import threading

from broadcaster.server import Broadcaster
from desks.service import Service
from desks.settings import Settings
from tests.conftest import running_system
from tests.e2e.conftest import http
from watcher.publisher import Publisher


def test_every_broadcaster_serves_the_same_stream(system, listen):
    extra = Broadcaster(system.publish_token, events=None)
    stop = threading.Event()
    thread = threading.Thread(target=extra.run, args=("127.0.0.1", 0, stop), daemon=True)
    thread.start()
    assert extra.listening.wait(10)
    publisher = Service(
        "publisher-2",
        Publisher(f"ws://127.0.0.1:{extra.port}/", system.publish_token, system.events).run,
    )
    publisher.start()
    try:
        first = listen(system.broadcaster_url)
        second = listen(f"ws://127.0.0.1:{extra.port}/")
        assert first.next()["type"] == second.next()["type"] == "hello"
        for n in range(20):
            http("POST", f"{system.api_url}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
        one, two = first.events(20), second.events(20)
        assert [e["seq"] for e in one] == list(range(1, 21))
        assert one == two
    finally:
        publisher.stop()
        stop.set()
        thread.join(10)


def test_settings_list_every_broadcaster_to_feed():
    settings = Settings.from_env({"DESKS_BROADCASTER_URLS": "ws://a:8765/, ws://b:8765/"})
    assert settings.publish_to == ("ws://a:8765/", "ws://b:8765/")
    assert Settings.from_env({}).publish_to == ("ws://127.0.0.1:8765/",)


def test_desks_up_feeds_every_broadcaster_the_settings_list(listen):
    extra = Broadcaster("shared-publish-token-0123456789abcdef", events=None)
    stop = threading.Event()
    thread = threading.Thread(target=extra.run, args=("127.0.0.1", 0, stop), daemon=True)
    thread.start()
    assert extra.listening.wait(10)
    elsewhere = f"ws://127.0.0.1:{extra.port}/"
    settings = Settings(
        embedded_path=":memory:",
        api_port=0,
        broadcaster_port=0,
        publish_token="shared-publish-token-0123456789abcdef",
        broadcaster_urls=(elsewhere,),
    )
    try:
        with running_system(settings) as system:
            client = listen(elsewhere)  # a broadcaster of its own, on another port or host
            assert client.next()["type"] == "hello"
            http("POST", f"{system.api_url}/api/desks", {"name": "D", "width": 1, "height": 1})
            assert client.next()["seq"] == 1
    finally:
        stop.set()
        thread.join(10)
