"""Report statuses the simulator never produces (it disqualifies nobody, and every car it enters
starts): the game's FinalClassification with a disqualified car (black flagged) and a car that
never drove a lap, into the lap timer; the report says DSQ with the game's reason, and DNS. And
the list of sessions /results shows (LIST_REPORTS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer

HEADER = {"session_uid": "77", "packet_format": 2025, "game_year": 25, "session_time_s": 1.0,
          "overall_frame_identifier": 1, "frame_identifier": 1}  # fmt: skip
FINISHED, DISQUALIFIED, NOT_CLASSIFIED = 3, 5, 6
BLACK_FLAGGED, FINISHED_REASON = 6, 2


def entry(position: int, status: int, laps: int, reason: int) -> dict[str, Any]:
    return {"position": position, "result_status": status, "num_laps": laps, "num_pit_stops": 0,
            "grid_position": position, "total_race_time_s": 300.0, "penalties_time_s": 0,
            "num_tyre_stints": 0, "result_reason": reason}  # fmt: skip


def test_a_disqualified_car_and_one_that_never_started(tmp_path: Path) -> None:
    store = Store(tmp_path / "laps.sqlite3")
    timer = LapTimer(store)
    timer.on_session({"header": HEADER, "session_type": 15, "track_name": "Monza", "total_laps": 3})
    names = ["A", "B", "C"]
    participants = [
        {"name": n, "team_name": "T", "race_number": i + 1} for i, n in enumerate(names)
    ]
    timer.on_participants({"header": HEADER, "num_active_cars": 3, "participants": participants})
    classification = [
        entry(1, FINISHED, 3, FINISHED_REASON),
        entry(2, DISQUALIFIED, 3, BLACK_FLAGGED),
        entry(3, NOT_CLASSIFIED, 0, 0),
    ]
    timer.on_final_classification(
        {"header": HEADER, "num_cars": 3, "classification_data": classification}
    )
    timer.flush()
    report = timer.get_report()
    store.close()
    assert report["final"] is True
    rows = [(r["driver"], r["status"], r["position"]) for r in report["classification"]]
    assert rows == [("A", "finished", 1), ("B", "DSQ", 2), ("C", "DNS", 3)]
    assert report["classification"][1]["reason"] == "black flagged"
    assert report["classification"][0]["reason"] is None


def test_earlier_sessions_stay_listed_and_readable_after_a_restart(tmp_path: Path) -> None:
    """What /results lists (LIST_REPORTS): every session, newest first, the earlier one's report
    still there, also from a lap timer started again on the same database."""
    store = Store(tmp_path / "laps.sqlite3")
    timer = LapTimer(store)
    for uid, track in (("77", "Monza"), ("78", "Spa")):
        header = {**HEADER, "session_uid": uid}
        timer.on_session({"header": header, "session_type": 15, "track_name": track})
        timer.on_final_classification(
            {"header": header, "num_cars": 1, "classification_data": [entry(1, FINISHED, 3, 2)]}
        )
    timer.flush()
    store.close()
    again = LapTimer(Store(tmp_path / "laps.sqlite3"))
    listed = [(r["session_uid"], r["track"], r["final"]) for r in again.list_reports()]
    assert listed == [("78", "Spa", True), ("77", "Monza", True)]
    assert again.get_report("77")["track"] == "Monza"
    again.store.close()
