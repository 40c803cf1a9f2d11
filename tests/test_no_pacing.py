"""Order is carried by the data, so no pacing for order is left (issue 15): the names of the
removed pacing (modules/livetiming/order.py's 20 ms gaps between streams, the replay's 2,000
messages/s cap, the 0.5 s reader settle) are back nowhere in the code, and no test sleeps for
order or paces a producer so that a consumer keeps up."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the timing-based order was made of (git log -S order.py: 2db326d removed them).
PACING_NAMES = (
    "ORDER_GAP_S",  # the gap left between samples of two streams
    "StreamOrder",  # the class that slept it
    "ORDERED_STREAMS",
    "FLAT_OUT_RATE",  # the flat-out replay's message rate cap
    "max_rate",
    "order_gap_s",
    "READER_SETTLE_S",  # the wait after a reader subscribed
    "settle_s",
    "PUSH_FRAMES_PER_S",  # a test producer paced so the lap timer's rings kept up
)
PATTERN = re.compile(r"\b(" + "|".join(PACING_NAMES) + r")\b")
# A sleep whose line or comment says it waits for order, a settle or a reader to keep up.
SLEEP_FOR_ORDER = re.compile(r"(sleep|\.wait)\(.*#.*\b(order|settle|keep up|catch up)", re.I)


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_pacing_name_is_left_in_the_code_or_the_tests():
    assert not (ROOT / "modules" / "livetiming" / "order.py").exists()
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources("modules", "dareplane_utils", "tests")
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PATTERN.search(line)
    ]
    assert found == []


def test_no_test_sleeps_for_order():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources("tests")
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SLEEP_FOR_ORDER.search(line)
    ]
    assert found == []


def test_the_check_finds_what_it_looks_for():
    """The patterns match the removed code as it was written (else the tests above prove
    nothing)."""
    assert PATTERN.search("from .order import ORDER_GAP_S, StreamOrder")
    assert PATTERN.search("    max_rate: float = FLAT_OUT_RATE,")
    assert PATTERN.search("        settle_s: float = READER_SETTLE_S,")
    assert SLEEP_FOR_ORDER.search("    time.sleep(0.02)  # so the lap timer keeps the order")
    assert not PATTERN.search("def _settle(self, car):")
