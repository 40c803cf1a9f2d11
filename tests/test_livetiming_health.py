"""Feed health: the access token's expiry read from the token, warnings before it runs out, a
clear error when the feed refuses it; topics that normally flow and stop."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

from dareplane_utils.testing import wait_until
from modules.livetiming.client import ClientOptions
from modules.livetiming.health import TopicWatch, token_expiry, token_status
from modules.livetiming.saving import Saver, save_to
from tests.livetiming_server import LiveTimingServer, serve, synthetic_race


def jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


NOW = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)


def test_the_tokens_expiry_is_read_from_it_and_judged():
    soon = jwt({"sub": "f1tv", "exp": (NOW + timedelta(minutes=30)).timestamp()})
    later = jwt({"exp": (NOW + timedelta(days=3)).timestamp()})
    gone = jwt({"exp": (NOW - timedelta(seconds=5)).timestamp()})
    assert token_expiry(soon) == NOW + timedelta(minutes=30)
    assert token_status(soon, NOW) == {
        "state": "expiring",
        "expires": "2026-03-08T04:30:00Z",
        "expires_in_s": 1800.0,
    }
    assert token_status(later, NOW)["state"] == "ok"
    assert token_status(gone, NOW)["state"] == "expired"
    assert token_status("not-a-jwt", NOW)["state"] == "unreadable"
    assert token_status(jwt({"sub": "no exp"}), NOW)["state"] == "unreadable"
    assert token_status(None, NOW)["state"] == "none"


def test_a_topic_that_flows_and_stops_is_silent_once_and_back_once():
    watch = TopicWatch()
    for second in range(25):
        watch.seen("TimingData", float(second))
        if second % 5 == 0:
            watch.seen("Heartbeat", float(second))
    watch.seen("WeatherData", 0.0)  # once: not known to flow, never silent
    # TimingData comes every second: silent after 30 s (the floor); Heartbeat every 5 s: 50 s.
    assert watch.silent(45.0) == {}
    assert watch.silent(55.0) == {"TimingData": 31.0}
    assert watch.changes(55.0) == ({"TimingData": 31.0}, [])
    assert watch.changes(56.0) == ({}, [])  # reported once
    assert set(watch.silent(75.0)) == {"TimingData", "Heartbeat"}
    watch.seen("TimingData", 76.0)
    assert watch.changes(76.5) == ({"Heartbeat": 56.5}, ["TimingData"])


def test_an_expired_token_is_reported_and_the_feeds_refusal_says_why(tmp_path, caplog):
    race = synthetic_race()
    expired = jwt({"exp": (datetime.now(UTC) - timedelta(hours=1)).timestamp()})
    with LiveTimingServer([serve(race.state, race.feed)], refused_token=expired) as server:
        options = ClientOptions(
            url=server.url, access_token=expired, backoff_s=0.05, idle_timeout_s=0.5
        )
        saver = Saver(save_to(tmp_path / "s.txt", False), options, logging.getLogger("health"))
        with caplog.at_level(logging.WARNING):
            assert saver.run() == "idle"
    status = saver.status()
    assert "HTTP 401" in status["last_error"] and "refused the access token" in status["last_error"]
    assert status["token"]["state"] == "expired" and status["token"]["expires_in_s"] < 0
    assert any(
        r.levelno == logging.ERROR and "access token expired" in r.getMessage()
        for r in caplog.records
    )


def test_a_topic_gone_quiet_while_others_flow_is_in_status_the_log_and_the_events(tmp_path, caplog):
    import threading
    import time

    from modules.livetiming.health import TopicWatch
    from modules.livetiming.publish import Publisher
    from modules.livetiming.topics import format_timestamp

    race = synthetic_race()

    def scenario(conn) -> None:
        subscribe = conn.wait_subscribe()
        conn.send({"type": 3, "invocationId": subscribe["invocationId"], "result": race.state})
        for _ in range(10):  # TimingData flows, then stops; the heartbeat goes on
            conn.feed("TimingData", {"Lines": {}}, format_timestamp(datetime.now(UTC)))
            time.sleep(0.02)
        while not conn.closed.wait(0.05):
            conn.feed("Heartbeat", {"Utc": "x"}, format_timestamp(datetime.now(UTC)))

    events: list[dict] = []
    publisher = Publisher("health-test")
    # What would go onto the streams, kept here (the JSON samples: events among them).
    publisher.publish = lambda sample: (
        isinstance(sample.value, dict) and events.append(sample.value)
    )
    with LiveTimingServer([scenario]) as server:
        saver = Saver(
            save_to(tmp_path / "s.txt", False),
            ClientOptions(url=server.url),
            logging.getLogger("health"),
            publisher,
            watch=TopicWatch(min_silence_s=0.5),
        )
        thread = threading.Thread(target=saver.run)
        with caplog.at_level(logging.WARNING):
            thread.start()
            try:
                wait_until(
                    lambda: "TimingData" in saver.status()["silent"],
                    timeout=30,
                    message="TimingData reported silent",
                )
                wait_until(
                    lambda: any(e.get("code") == "FEED" for e in events),
                    timeout=30,
                    message="the FEED event",
                )
            finally:
                saver.stop()
                thread.join(timeout=30)
    assert "Heartbeat" not in saver.status()["silent"]
    assert "TimingData silent for" in caplog.text
    feed = [e["name"] for e in events if e.get("code") == "FEED"]
    assert feed and feed[0].startswith("TimingData silent for")
