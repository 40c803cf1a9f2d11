"""What a race engineer watches, modelled per car: tyre wear per corner, ERS, 2026 aero and
overtake mode. Advanced by the race model every frame from how far and how the car moved;
sent by the broadcaster (CarDamage, CarStatus, CarTelemetry2) and reported in TRUTH.

Tyre wear grows with distance on track at the compound's rate per lap, by corner (the rears
and the outside front of a clockwise lap work hardest), by driver (some are kinder to tyres)
and at 40 % under the safety car; nothing wears in the pit lane. ERS: a 4 MJ store; the MGU-K
harvests under braking (120 kW, at most 2 MJ a lap) and the MGU-H at speed (20 kW); the car
deploys 120 kW accelerating above 200 km/h (160 kW in overtake mode) up to 4 MJ a lap; the
deploy mode is 0 (none) with the store nearly empty, 3 (overtake) within a second of the car
ahead, else 1 (medium). 2026: active aero's low-drag mode opens above 250 km/h while it is
available (not under the safety car); overtake mode is available for a lap after starting it
within a second of the car ahead, active while deploying with it available.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CORNER_WEAR = (1.08, 1.12, 0.94, 1.0)  # RL, RR, FL, FR (EA's wheel order)
SC_WEAR = 0.4
ERS_STORE_J = 4.0e6
ERS_DEPLOY_W = 120e3
ERS_OVERTAKE_W = 160e3
ERS_DEPLOY_LAP_J = 4.0e6
MGUK_W = 120e3
MGUK_LAP_J = 2.0e6
MGUH_W = 20e3
DEPLOY_KPH = 200.0
MGUH_KPH = 150.0
BRAKING_MS2 = -3.0
EMPTY_J = 0.4e6
AERO_KPH = 250.0
OVERTAKE_GAP_MS = 1000
FUEL_KG_PER_LAP = 1.6
SC_FUEL = 0.6


@dataclass
class CarSystems:
    """One car's tyres, ERS and 2026 modes; the values the packets carry."""

    wear_factor: float = 1.0  # the driver's way with tyres
    wear: list[float] = field(default_factory=lambda: [0.0] * 4)  # percent, RL RR FL FR
    ers_store_j: float = ERS_STORE_J
    ers_deployed_j: float = 0.0  # this lap
    ers_harvested_k_j: float = 0.0  # this lap
    ers_harvested_h_j: float = 0.0  # this lap
    ers_mode: int = 1
    aero_available: bool = True
    aero_low_drag: bool = False
    overtake_available: bool = False
    overtake_active: bool = False
    overtake_activation_m: float = 0.0  # lap distance where overtake mode was armed

    def new_set(self) -> None:
        self.wear = [0.0] * 4

    def new_lap(self, gap_ahead_ms: int, at_m: float) -> None:
        """At the line: the per-lap ERS counters start again; overtake mode is armed for the
        lap when the car crosses within a second of the car ahead."""
        self.ers_deployed_j = self.ers_harvested_k_j = self.ers_harvested_h_j = 0.0
        self.overtake_available = 0 < gap_ahead_ms < OVERTAKE_GAP_MS
        self.overtake_activation_m = at_m if self.overtake_available else 0.0

    def advance(
        self,
        dt: float,
        moved_m: float,
        kph: float,
        accel_ms2: float,
        on_track: bool,
        safety_car: bool,
        wear_pct_per_lap: float,
        track_length_m: float,
        close_behind: bool,
    ) -> None:
        if on_track and moved_m > 0:
            rate = wear_pct_per_lap * self.wear_factor * moved_m / track_length_m
            rate *= SC_WEAR if safety_car else 1.0
            self.wear = [
                min(100.0, w + rate * c) for w, c in zip(self.wear, CORNER_WEAR, strict=True)
            ]
        if self.ers_store_j < EMPTY_J:
            self.ers_mode = 0
        else:
            self.ers_mode = 3 if close_behind and not safety_car else 1
        store = self.ers_store_j
        if on_track and accel_ms2 < BRAKING_MS2:
            harvest = min(MGUK_W * dt, MGUK_LAP_J - self.ers_harvested_k_j, ERS_STORE_J - store)
            harvest = max(0.0, harvest)
            self.ers_harvested_k_j += harvest
            store += harvest
        if on_track and kph > MGUH_KPH:
            harvest = max(0.0, min(MGUH_W * dt, ERS_STORE_J - store))
            self.ers_harvested_h_j += harvest
            store += harvest
        deploying = on_track and not safety_car and kph > DEPLOY_KPH and accel_ms2 > 0
        if deploying and self.ers_mode:
            power = ERS_OVERTAKE_W if self.ers_mode == 3 else ERS_DEPLOY_W
            deploy = min(power * dt, store, ERS_DEPLOY_LAP_J - self.ers_deployed_j)
            deploy = max(0.0, deploy)
            self.ers_deployed_j += deploy
            store -= deploy
        self.ers_store_j = store
        self.aero_available = on_track and not safety_car
        self.aero_low_drag = self.aero_available and kph > AERO_KPH
        self.overtake_active = self.overtake_available and deploying

    def truth(self) -> dict[str, object]:
        return {
            "tyre_wear_pct": list(self.wear),
            "ers_store_j": self.ers_store_j,
            "ers_deployed_this_lap_j": self.ers_deployed_j,
            "ers_harvested_this_lap_mguk_j": self.ers_harvested_k_j,
            "ers_harvested_this_lap_mguh_j": self.ers_harvested_h_j,
            "ers_deploy_mode": self.ers_mode,
        }
