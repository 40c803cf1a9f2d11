"""The simulator's stewards, as the game: warnings and a time penalty (added to the race time
in the classification), a drive-through and a stop-go served on a later lap (PENA, then DTSV /
SGSV), retirements with a reason; every one of them in TRUTH and in the packets alike."""

from __future__ import annotations

from modules.f1_udp.appendix import INFRINGEMENT_NAMES, PENALTY_TYPE_NAMES
from modules.f1_udp.events import event_details
from modules.f1_udp.packets import PacketId, parse_packet
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions

OPTIONS = SessionOptions(laps=5, cars=20, rate=10, seed=3, retirements=1, penalties=3)


def play(options: SessionOptions) -> tuple[dict, list]:
    sim = RaceSim(options, session_uid=0xBEEF)
    broadcaster = Broadcaster(sim)
    packets = []
    while not sim.over:
        packets += [parse_packet(d) for d in broadcaster.step()]
    return sim.truth(), packets


def test_penalties_are_issued_served_and_counted_as_truth_says():
    truth, packets = play(OPTIONS)
    events = [p for p in packets if p["header"]["packetId"] == PacketId.EVENT]
    seen: dict[str, list] = {}
    for packet in events:
        code = bytes(packet["eventStringCode"]).decode()
        seen.setdefault(code, []).append(event_details(packet))
    issued = [
        (int(d["vehicleIdx"]), int(d["penaltyType"]), int(d["infringementType"]), int(d["lapNum"]))
        for d in seen["PENA"]
        if int(d["penaltyType"]) != 10  # corner cutting lap invalidations: not in the plan
    ]
    expected = [
        (car["car_index"], p["penalty_type"], p["infringement"], p["lap"])
        for car in truth["cars"]
        for p in car["penalties"]
        if "served" not in p
    ]
    assert sorted(issued) == sorted(expected)
    kinds = {PENALTY_TYPE_NAMES[p[1]] for p in expected}
    assert kinds == {"warning", "time penalty", "drive through", "stop go"}
    assert INFRINGEMENT_NAMES[7] == "corner cutting gained time"
    served = {
        code: sorted(int(d["vehicleIdx"]) for d in seen.get(code, [])) for code in ("DTSV", "SGSV")
    }
    assert served == {
        code: sorted(
            car["car_index"]
            for car in truth["cars"]
            for p in car["penalties"]
            if p.get("served") == code
        )
        for code in ("DTSV", "SGSV")
    }
    assert served["DTSV"] and served["SGSV"]
    stop_go = next(c for c in truth["cars"] if any(v["kind"] == "stop_go" for v in c["pit_stops"]))
    visit = next(v for v in stop_go["pit_stops"] if v["kind"] == "stop_go")
    assert visit["stationary_ms"] == 10000
    assert float(seen["SGSV"][0]["stopTime"]) == 10.0
    drive = next(
        c for c in truth["cars"] if any(v["kind"] == "drive_through" for v in c["pit_stops"])
    )
    # A served penalty is no tyre stop: the stints change only at the stop for tyres.
    assert len(drive["stints"]) == 1 + sum(v["kind"] == "tyres" for v in drive["pit_stops"])

    final = [p for p in packets if p["header"]["packetId"] == PacketId.FINAL_CLASSIFICATION][-1]
    rows = final["classificationData"]
    timed = next(c for c in truth["cars"] if c["penalty_s"])
    assert int(rows[timed["car_index"]]["penaltiesTime"]) == timed["penalty_s"] == 5
    # The classification orders finishers by race time plus penalties.
    finishers = [c for c in truth["cars"] if c["status"] == "finished"]
    by_time = sorted(
        finishers, key=lambda c: (-len(c["laps"]), c["total_time_ms"] + 1000 * c["penalty_s"])
    )
    order = [i for i in truth["final_order"] if truth["cars"][i]["status"] == "finished"]
    assert order == [c["car_index"] for c in by_time]
    for car in finishers:
        assert round(float(rows[car["car_index"]]["totalRaceTime"]) * 1000) == car["total_time_ms"]

    retired = next(c for c in truth["cars"] if c["status"] == "dnf")
    assert retired["result_reason"] in (3, 8)
    assert int(rows[retired["car_index"]]["resultReason"]) == retired["result_reason"]
    rtmt = seen["RTMT"][0]
    assert int(rtmt["vehicleIdx"]) == retired["car_index"]
    assert int(rtmt["reason"]) == retired["result_reason"]
    assert sum(c["laps_led"] for c in truth["cars"]) == truth["total_laps"]


def test_no_penalties_option_no_penalty_and_the_race_unchanged():
    plain, _ = play(SessionOptions(laps=5, cars=20, rate=10, seed=3, retirements=1))
    assert all(not [p for p in c["penalties"]] for c in plain["cars"])
    penalised, _ = play(OPTIONS)
    # Penalties come from their own random stream: the cars without one drive the same laps.
    clean = [c["car_index"] for c in penalised["cars"] if not c["penalties"]]
    for index in clean[:3]:
        assert plain["cars"][index]["laps"][0] == penalised["cars"][index]["laps"][0]
