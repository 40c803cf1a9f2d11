"""The broadcast delay: everything the live timing module publishes goes out S seconds late,
in order; the delay changes while running (SET_DELAY), and bad values are refused."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pylsl
import pytest

from dareplane_utils.testing import wait_until
from modules.livetiming.client import ClientOptions
from modules.livetiming.publish import Publisher
from modules.livetiming.service import LiveTiming
from modules.livetiming.state import EVENTS, Sample


def test_samples_go_out_after_the_delay_in_order_and_a_shorter_delay_releases_them():
    publisher = Publisher("delay-test", delay_s=0.5)
    try:
        outlet = publisher.outlet(EVENTS)
        (info,) = pylsl.resolve_bypred(f"source_id='{outlet.get_info().source_id()}'", 1, 10)
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(timeout=10)
        wait_until(outlet.have_consumers, timeout=10, message="the inlet on the outlet")
        handed = pylsl.local_clock()
        for n in range(5):
            publisher.publish(Sample(EVENTS, {"code": "TEST", "n": n}, datetime.now(UTC)))
        assert publisher.held() == 5
        got = []
        while len(got) < 5:
            sample, _ = inlet.pull_sample(timeout=10)
            assert sample is not None, "a delayed sample never came"
            got.append((json.loads(sample[0])["n"], pylsl.local_clock()))
        assert [n for n, _ in got] == list(range(5))
        assert all(arrived - handed >= 0.5 for _, arrived in got)

        # A long delay, then none: what is held goes at once, still in order.
        publisher.set_delay(60)
        for n in range(5, 8):
            publisher.publish(Sample(EVENTS, {"code": "TEST", "n": n}, datetime.now(UTC)))
        assert inlet.pull_sample(timeout=0.3)[0] is None
        publisher.set_delay(0)
        later = [json.loads(inlet.pull_sample(timeout=10)[0][0])["n"] for _ in range(3)]
        assert later == [5, 6, 7] and publisher.held() == 0
    finally:
        publisher.close()


@pytest.mark.parametrize("bad", [-1, 601, "5", True, None])
def test_a_bad_delay_is_refused_with_the_reason(bad):
    service = LiveTiming(
        ClientOptions(url="http://127.0.0.1:1"), Publisher("delay-bad"), logging.getLogger("t"), 0
    )
    try:
        with pytest.raises(ValueError, match="delay must be"):
            service.set_delay(bad)
        assert service.set_delay(2.5) == {"delay_s": 2.5}
        assert service.status()["delay_s"] == 2.5
    finally:
        service.close()
