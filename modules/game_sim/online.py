"""Online lobbies: what the game hides of a car whose driver keeps their telemetry restricted.

EA's spec ("Restricted data"): with a driver's "Your Telemetry" set to Restricted, other players
(and spectators) get zeros for that car in these fields; the driver always sees their own car.
Participants and LobbyInfo say so per car (`yourTelemetry` 0 restricted, 1 public). Lap data,
telemetry, tyre compound and age stay public.
"""

from __future__ import annotations

import numpy as np

from modules.f1_udp.packets import PacketId

# Per packet: the per-car array and the fields zeroed there (None: every field of the car).
RESTRICTED_FIELDS: dict[int, tuple[str, tuple[str, ...] | None]] = {
    PacketId.CAR_STATUS: (
        "carStatusData",
        (
            "fuelMix",
            "frontBrakeBias",
            "fuelInTank",
            "fuelCapacity",
            "fuelRemainingLaps",
            "ersDeployMode",
            "ersStoreEnergy",
            "ersDeployedThisLap",
            "ersHarvestedThisLapMGUK",
            "ersHarvestedThisLapMGUH",
            "enginePowerICE",
            "enginePowerMGUK",
        ),
    ),
    PacketId.CAR_DAMAGE: ("carDamageData", None),
    PacketId.CAR_SETUPS: ("carSetupData", None),
}


def restricted_cars(count: int, cars: int, spectator: bool) -> frozenset[int]:
    """The cars (by index) whose telemetry is restricted to whoever receives the packets: the
    `count` cars after the player's (car 0); a spectator has no car of its own, so from car 0."""
    first = 0 if spectator else 1
    return frozenset(range(first, min(cars, first + count)))


def hide(packet: np.ndarray, packet_id: int, cars: frozenset[int]) -> None:
    """Zero, in place, what the game hides of `cars` in one packet of type `packet_id`."""
    if packet_id not in RESTRICTED_FIELDS or not cars:
        return
    array, fields = RESTRICTED_FIELDS[packet_id]
    data = packet[array]
    for index in cars:
        if fields is None:
            data[index] = np.zeros((), data.dtype)
        else:
            for name in fields:
                if name in data.dtype.names:
                    data[name][index] = 0
