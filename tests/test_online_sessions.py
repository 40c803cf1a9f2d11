"""Online lobbies as the game sends them: drivers who restrict their telemetry (their fuel,
ERS, damage, wear, setup arrive as zeros; Participants says so) and a spectator (no car of its
own: player car index 255). The real simulator's packets through the real decoder core into the
lap timer: every lap still equal to TRUTH."""

from __future__ import annotations

import pytest
from test_lap_timer_truth import RATE, Game, check_against_truth, check_race_result

from modules.f1_udp.packets import PacketId, parse_packet
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer


@pytest.fixture
def timer(tmp_path):
    store = Store(tmp_path / "online.sqlite3")
    yield LapTimer(store, PointsRules())
    store.close()


@pytest.mark.parametrize("spectator", [False, True], ids=["player", "spectator"])
def test_restricted_telemetry_hides_what_the_game_hides(spectator):
    sim = RaceSim(
        SessionOptions(rate=RATE, laps=3, cars=20, restricted_cars=6, spectator=spectator),
        session_uid=0x0411,
    )
    broadcaster = Broadcaster(sim, 2026)
    seen: dict[int, dict] = {}
    while sim.time_s < 240:  # past the stops: fuel burnt, tyres worn
        for datagram in broadcaster.step():
            packet = parse_packet(datagram)
            seen[int(packet["header"]["packetId"])] = packet
    hidden = set(range(0 if spectator else 1, (0 if spectator else 1) + 6))
    assert {int(seen[i]["header"]["playerCarIndex"]) for i in seen} == {255 if spectator else 0}
    session = seen[PacketId.SESSION]
    assert int(session["isSpectating"]) == spectator
    assert int(session["spectatorCarIndex"]) == (sim._leader().index if spectator else 255)
    telemetry = seen[PacketId.PARTICIPANTS]["participants"]["yourTelemetry"][:20]
    assert {i for i in range(20) if telemetry[i] == 0} == hidden
    status = seen[PacketId.CAR_STATUS]["carStatusData"]
    damage = seen[PacketId.CAR_DAMAGE]["carDamageData"]
    for car in range(20):
        restricted = car in hidden
        assert (status["fuelInTank"][car] == 0) == restricted
        assert (status["ersStoreEnergy"][car] == 0) == restricted
        if restricted:
            assert damage["tyresWear"][car].max() == 0
        # Compound and age stay public: the lap timer's tyres need them.
        assert status["visualTyreCompound"][car] in (16, 17, 18)
    assert any(damage["tyresWear"][car].max() > 0 for car in set(range(20)) - hidden)
    assert int(seen[PacketId.CAR_SETUPS]["carSetupData"]["frontWing"][min(hidden)]) == 0


@pytest.mark.parametrize("spectator", [False, True], ids=["player", "spectator"])
def test_laps_stay_exact_in_an_online_lobby(timer, spectator):
    options = SessionOptions(
        rate=RATE, laps=3, cars=20, seed=9, retirements=1, restricted_cars=10, spectator=spectator
    )
    game = Game(timer, options, uid=0x0411_0000 + spectator)
    game.run()
    truth = game.sim.truth()
    assert any(lap["pit_in"] for car in truth["cars"] for lap in car["laps"])
    check_race_result(check_against_truth(timer, truth), truth)
    assert timer.status()["history_corrections"] == 0
