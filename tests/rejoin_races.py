"""The pit-rejoin prediction over several simulated races, in one process: the simulator's
packets through the real decoder core into the engineer's model, each stop's prediction (made as
the car began its in-lap) judged against TRUTH as `rejoin_support` does. The model test uses
`play_race`; run as a script it prints the accuracy per race and every miss:

    .venv/bin/python -m tests.rejoin_races spielberg:3 spielberg:7 monza:3 lusail:4 monaco:5
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

from modules.engineer.model import NUMERIC_FIELDS, PARTICIPANTS, SESSION, Engineer
from modules.engineer.rejoin import default_loss_s
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions
from modules.stream_catalogue import STREAMS as CATALOGUE
from modules.telemetry_decoder.core import Datagram, DecoderCore
from tests.rejoin_support import Judged, judge

WANTED = {int(CATALOGUE[name].packet_id) for name in (*NUMERIC_FIELDS, SESSION, PARTICIPANTS)}
# The races the accuracy is stated for (track, seed): a one-stop race of 10 laps, 20 cars, every
# car stopping once, neighbours on the grid laps apart.
RACES = [("spielberg", 3), ("spielberg", 7), ("monza", 3), ("lusail", 4), ("monaco", 5)]


class Played:
    """A session played into an Engineer through the decoder core; `on_frame` after each."""

    def __init__(self, options: SessionOptions, fmt: int = 2026) -> None:
        self.sim = RaceSim(options, session_uid=0xE1161)
        self.broadcaster = Broadcaster(self.sim, fmt)
        self.core = DecoderCore()
        self.engineer = Engineer()
        for name in NUMERIC_FIELDS:
            self.engineer.set_channels(name, CATALOGUE[name].spec("test").labels)
        self.clock = 0.0

    def run(self, on_frame: Callable[[], None] | None = None) -> None:
        while not self.sim.over:
            batch = []
            for data in self.broadcaster.step():
                if data[6] in WANTED:
                    self.clock += 1e-4
                    batch.append(Datagram(data, ("127.0.0.1", 20777), self.clock))
            for publication in self.core.feed(batch):
                if publication.rows is not None and publication.stream in NUMERIC_FIELDS:
                    for row in publication.rows:
                        self.engineer.on_row(publication.stream, row)
                elif publication.objects is not None:
                    for obj in publication.objects:
                        self.engineer.on_json(publication.stream, obj)
            if on_frame is not None:
                on_frame()


def play_race(
    track: str, seed: int
) -> tuple[list[Judged], dict[str, Any], Engineer, dict[tuple[int, int], dict[str, Any]]]:
    """(each stop judged, TRUTH, the engineer at the end, the predictions by (car, lap))."""
    played = Played(SessionOptions(track=track, laps=10, rate=10, seed=seed, pit_spread=True))
    engineer = played.engineer
    predictions: dict[tuple[int, int], dict[str, Any]] = {}

    def on_frame() -> None:
        # As the engine publishes them: worked out when a lap ends (the first frame of a lap).
        for car in engineer.cars:
            key = (car.index, car.lap)
            if car.lap and key not in predictions:
                prediction = engineer.rejoin(car)
                if prediction is not None:
                    predictions[key] = {**prediction, "t": engineer.time_s}

    played.run(on_frame)
    truth = played.sim.truth()
    judged = judge(truth, lambda car, lap: predictions.get((car, lap)))
    return judged, truth, engineer, predictions


def main(races: list[str]) -> int:
    chosen = [(r.split(":")[0], int(r.split(":")[1])) for r in races] or RACES
    total = right = 0
    for track, seed in chosen:
        judged, _, engineer, predictions = play_race(track, seed)
        losses = {s["car_index"]: s["loss_s"] for s in engineer.stops}
        good = sum(j.right for j in judged)
        total, right = total + len(judged), right + good
        green = [s["loss_s"] for s in engineer.stops if not s["safety_car"]]
        print(
            f"{track} seed {seed}: {good} of {len(judged)} right (pit loss: track default "
            f"{default_loss_s(engineer.pit_loss.track_id)} s, "
            f"median of {len(green)} measured {statistics.median(green) if green else None} s)",
            flush=True,
        )
        for j in judged:
            if not j.right:
                made = predictions.get((j.car_index, j.in_lap)) or {}
                print(
                    f"    miss car {j.car_index} in-lap {j.in_lap}: behind car {j.nearest} "
                    f"predicted {j.predicted_gap_ms} ms, really {j.real_gap_ms} ms "
                    f"(position {'ok' if j.position_ok else 'wrong'}; loss used "
                    f"{made.get('pit_loss_s')} s {made.get('pit_loss_source')}, "
                    f"this stop's {losses.get(j.car_index)} s)"
                )
    print(f"all: {right} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
