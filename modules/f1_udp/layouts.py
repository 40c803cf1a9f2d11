"""Byte layouts of every F1 game UDP packet of formats 2024, 2025 and 2026, as numpy dtypes.

Written from EA's published specifications (F1 24, F1 25, F1 25 "2026 Season Pack"). All data
is little-endian and packed (no padding), which is what numpy's unaligned structured dtypes
are. Field names are EA's names without the `m_` prefix, kept in EA's camelCase so every field
can be checked against the spec by eye; the stream catalogue renames them for consumers.
Where EA renamed a field between years (F1 24's `m_carSetups`), the newest name is used for
every format, so code written against one format reads the others.

Each format is built by the one function below, with the year-on-year changes spelt out as
conditions, so "what changed since last year" reads straight off the code.
"""

from __future__ import annotations

import numpy as np

U8, I8, U16, I16, U32, U64 = "u1", "i1", "<u2", "<i2", "<u4", "<u8"
F32, F64 = "<f4", "<f8"

FORMATS = (2024, 2025, 2026)
HEADER_SIZE = 29
NAME_LEN = {2024: 48, 2025: 32, 2026: 32}
# F1 25's 2026 Season Pack widened every per-car array from 22 to 24 cars.
MAX_CARS = {2024: 22, 2025: 22, 2026: 24}
MAX_TYRE_STINTS = 8
MAX_TYRE_SETS = 20  # 13 slick + 7 wet
MAX_LAPS_IN_HISTORY = 100
MAX_LAPS_IN_LAP_POSITIONS = 50
EVENT_DETAILS_SIZE = 12  # the union's size: its largest member (SpeedTrap) is 12 bytes


class UnknownPacketError(KeyError):
    """No layout for this (packet format, packet id) or event code."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else "unknown packet"


HEADER_DTYPE = np.dtype(
    [
        ("packetFormat", U16),
        ("gameYear", U8),
        ("gameMajorVersion", U8),
        ("gameMinorVersion", U8),
        ("packetVersion", U8),
        ("packetId", U8),
        ("sessionUID", U64),
        ("sessionTime", F32),
        ("frameIdentifier", U32),
        ("overallFrameIdentifier", U32),
        ("playerCarIndex", U8),
        ("secondaryPlayerCarIndex", U8),
    ]
)
assert HEADER_DTYPE.itemsize == HEADER_SIZE


def _packet(*fields: tuple) -> np.dtype:
    return np.dtype([("header", HEADER_DTYPE), *fields])


def _car_motion(fmt: int) -> np.dtype:
    # 2026 quantises g-forces to int16 (value / 1000.0 gives g).
    g_force = I16 if fmt >= 2026 else F32
    return np.dtype(
        [
            ("worldPositionX", F32),
            ("worldPositionY", F32),
            ("worldPositionZ", F32),
            ("worldVelocityX", F32),
            ("worldVelocityY", F32),
            ("worldVelocityZ", F32),
            ("worldForwardDirX", I16),
            ("worldForwardDirY", I16),
            ("worldForwardDirZ", I16),
            ("worldRightDirX", I16),
            ("worldRightDirY", I16),
            ("worldRightDirZ", I16),
            ("gForceLateral", g_force),
            ("gForceLongitudinal", g_force),
            ("gForceVertical", g_force),
            ("yaw", F32),
            ("pitch", F32),
            ("roll", F32),
        ]
    )


MARSHAL_ZONE = np.dtype([("zoneStart", F32), ("zoneFlag", I8)])
WEATHER_FORECAST_SAMPLE = np.dtype(
    [
        ("sessionType", U8),
        ("timeOffset", U8),
        ("weather", U8),
        ("trackTemperature", I8),
        ("trackTemperatureChange", I8),
        ("airTemperature", I8),
        ("airTemperatureChange", I8),
        ("rainPercentage", U8),
    ]
)
ZONE = np.dtype([("zoneStart", F32), ("zoneEnd", F32)])  # 2026 Active Aero and DRS zones


def _session_fields(fmt: int) -> list[tuple]:
    fields: list[tuple] = [
        ("weather", U8),
        ("trackTemperature", I8),
        ("airTemperature", I8),
        ("totalLaps", U8),
        ("trackLength", U16),
        ("sessionType", U8),
        ("trackId", I8),
        ("formula", U8),
        ("sessionTimeLeft", U16),
        ("sessionDuration", U16),
        ("pitSpeedLimit", U8),
        ("gamePaused", U8),
        ("isSpectating", U8),
        ("spectatorCarIndex", U8),
        ("sliProNativeSupport", U8),
        ("numMarshalZones", U8),
        ("marshalZones", MARSHAL_ZONE, (21,)),
        ("safetyCarStatus", U8),
        ("networkGame", U8),
        ("numWeatherForecastSamples", U8),
        ("weatherForecastSamples", WEATHER_FORECAST_SAMPLE, (64,)),
        ("forecastAccuracy", U8),
        ("aiDifficulty", U8),
        ("seasonLinkIdentifier", U32),
        ("weekendLinkIdentifier", U32),
        ("sessionLinkIdentifier", U32),
        ("pitStopWindowIdealLap", U8),
        ("pitStopWindowLatestLap", U8),
        ("pitStopRejoinPosition", U8),
        ("steeringAssist", U8),
        ("brakingAssist", U8),
        ("gearboxAssist", U8),
        ("pitAssist", U8),
        ("pitReleaseAssist", U8),
        ("ERSAssist", U8),
        ("DRSAssist", U8),
        ("dynamicRacingLine", U8),
        ("dynamicRacingLineType", U8),
        ("gameMode", U8),
        ("ruleSet", U8),
        ("timeOfDay", U32),
        ("sessionLength", U8),
        ("speedUnitsLeadPlayer", U8),
        ("temperatureUnitsLeadPlayer", U8),
        ("speedUnitsSecondaryPlayer", U8),
        ("temperatureUnitsSecondaryPlayer", U8),
        ("numSafetyCarPeriods", U8),
        ("numVirtualSafetyCarPeriods", U8),
        ("numRedFlagPeriods", U8),
        ("equalCarPerformance", U8),
        ("recoveryMode", U8),
        ("flashbackLimit", U8),
        ("surfaceType", U8),
        ("lowFuelMode", U8),
        ("raceStarts", U8),
        ("tyreTemperature", U8),
        ("pitLaneTyreSim", U8),
        ("carDamage", U8),
        ("carDamageRate", U8),
        ("collisions", U8),
        ("collisionsOffForFirstLapOnly", U8),
        ("mpUnsafePitRelease", U8),
        ("mpOffForGriefing", U8),
        ("cornerCuttingStringency", U8),
        ("parcFermeRules", U8),
        ("pitStopExperience", U8),
        ("safetyCar", U8),
        ("safetyCarExperience", U8),
        ("formationLap", U8),
        ("formationLapExperience", U8),
        ("redFlags", U8),
        ("affectsLicenceLevelSolo", U8),
        ("affectsLicenceLevelMP", U8),
        ("numSessionsInWeekend", U8),
        ("weekendStructure", U8, (12,)),
        ("sector2LapDistanceStart", F32),
        ("sector3LapDistanceStart", F32),
    ]
    if fmt >= 2026:
        fields += [
            ("activeAeroTrackStatus", U8),
            ("numActiveAeroZonesFull", U8),
            ("activeAeroZonesFull", ZONE, (8,)),
            ("numActiveAeroZonesPartial", U8),
            ("activeAeroZonesPartial", ZONE, (8,)),
            ("numDRSZones", U8),
            ("drsZones", ZONE, (4,)),
            ("startReactionTime", F32),
            ("antiLockBrakesAssist", U8),
            ("tractionControlAssist", U8),
            ("dynamicRacingLineHiVis", U8),
            ("dynamicRacingLineColourBlind", U8),
            ("recurringRewindPrompt", U8),
        ]
    return fields


LAP_DATA = np.dtype(
    [
        ("lastLapTimeInMS", U32),
        ("currentLapTimeInMS", U32),
        ("sector1TimeMSPart", U16),
        ("sector1TimeMinutesPart", U8),
        ("sector2TimeMSPart", U16),
        ("sector2TimeMinutesPart", U8),
        ("deltaToCarInFrontMSPart", U16),
        ("deltaToCarInFrontMinutesPart", U8),
        ("deltaToRaceLeaderMSPart", U16),
        ("deltaToRaceLeaderMinutesPart", U8),
        ("lapDistance", F32),
        ("totalDistance", F32),
        ("safetyCarDelta", F32),
        ("carPosition", U8),
        ("currentLapNum", U8),
        ("pitStatus", U8),
        ("numPitStops", U8),
        ("sector", U8),
        ("currentLapInvalid", U8),
        ("penalties", U8),
        ("totalWarnings", U8),
        ("cornerCuttingWarnings", U8),
        ("numUnservedDriveThroughPens", U8),
        ("numUnservedStopGoPens", U8),
        ("gridPosition", U8),
        ("driverStatus", U8),
        ("resultStatus", U8),
        ("pitLaneTimerActive", U8),
        ("pitLaneTimeInLaneInMS", U16),
        ("pitStopTimerInMS", U16),
        ("pitStopShouldServePen", U8),
        ("speedTrapFastestSpeed", F32),
        ("speedTrapFastestLap", U8),
    ]
)


def _participant(fmt: int) -> np.dtype:
    # 2026 widened the driver, network and team ids to uint16.
    wide = U16 if fmt >= 2026 else U8
    fields: list[tuple] = [
        ("aiControlled", U8),
        ("driverId", wide),
        ("networkId", wide),
        ("teamId", wide),
        ("myTeam", U8),
        ("raceNumber", U8),
        ("nationality", U8),
        ("name", f"S{NAME_LEN[fmt]}"),
        ("yourTelemetry", U8),
        ("showOnlineNames", U8),
        ("techLevel", U16),
        ("platform", U8),
    ]
    if fmt >= 2025:
        fields += [("numColours", U8), ("liveryColours", LIVERY_COLOUR, (4,))]
    return np.dtype(fields)


LIVERY_COLOUR = np.dtype([("red", U8), ("green", U8), ("blue", U8)])

CAR_SETUP = np.dtype(
    [
        ("frontWing", U8),
        ("rearWing", U8),
        ("onThrottle", U8),
        ("offThrottle", U8),
        ("frontCamber", F32),
        ("rearCamber", F32),
        ("frontToe", F32),
        ("rearToe", F32),
        ("frontSuspension", U8),
        ("rearSuspension", U8),
        ("frontAntiRollBar", U8),
        ("rearAntiRollBar", U8),
        ("frontSuspensionHeight", U8),
        ("rearSuspensionHeight", U8),
        ("brakePressure", U8),
        ("brakeBias", U8),
        ("engineBraking", U8),
        ("rearLeftTyrePressure", F32),
        ("rearRightTyrePressure", F32),
        ("frontLeftTyrePressure", F32),
        ("frontRightTyrePressure", F32),
        ("ballast", U8),
        ("fuelLoad", F32),
    ]
)


def _car_telemetry(fmt: int) -> np.dtype:
    return np.dtype(
        [
            ("speed", U16),
            ("throttle", F32),
            ("steer", F32),
            ("brake", F32),
            ("clutch", U8),
            ("gear", I8),
            ("engineRPM", U16),
            ("drs", U8),
            ("revLightsPercent", U8),
            ("revLightsBitValue", U16),
            ("brakesTemperature", U16, (4,)),
            ("tyresSurfaceTemperature", U8, (4,)),
            ("tyresInnerTemperature", U8, (4,)),
            # 2026 narrowed the engine temperature to uint8.
            ("engineTemperature", U8 if fmt >= 2026 else U16),
            ("tyresPressure", F32, (4,)),
            ("surfaceType", U8, (4,)),
        ]
    )


def _car_status(fmt: int) -> np.dtype:
    fields: list[tuple] = [
        ("tractionControl", U8),
        ("antiLockBrakes", U8),
        ("fuelMix", U8),
        ("frontBrakeBias", U8),
        ("pitLimiterStatus", U8),
        ("fuelInTank", F32),
        ("fuelCapacity", F32),
        ("fuelRemainingLaps", F32),
        ("maxRPM", U16),
        ("idleRPM", U16),
        ("maxGears", U8),
        ("drsAllowed", U8),
        ("drsActivationDistance", U16),
        ("actualTyreCompound", U8),
        ("visualTyreCompound", U8),
        ("tyresAgeLaps", U8),
        ("vehicleFIAFlags", I8),
        ("enginePowerICE", F32),
        ("enginePowerMGUK", F32),
        ("ersStoreEnergy", F32),
        ("ersDeployMode", U8),
        ("ersHarvestedThisLapMGUK", F32),
        ("ersHarvestedThisLapMGUH", F32),
        ("ersDeployedThisLap", F32),
    ]
    if fmt >= 2026:
        fields.append(("ersHarvestLimitPerLap", F32))
    fields.append(("networkPaused", U8))
    return np.dtype(fields)


def _final_classification(fmt: int) -> np.dtype:
    fields: list[tuple] = [
        ("position", U8),
        ("numLaps", U8),
        ("gridPosition", U8),
        ("points", U8),
        ("numPitStops", U8),
        ("resultStatus", U8),
    ]
    if fmt >= 2025:
        fields.append(("resultReason", U8))
    fields += [
        ("bestLapTimeInMS", U32),
        ("totalRaceTime", F64),
        ("penaltiesTime", U8),
        ("numPenalties", U8),
        ("numTyreStints", U8),
        ("tyreStintsActual", U8, (MAX_TYRE_STINTS,)),
        ("tyreStintsVisual", U8, (MAX_TYRE_STINTS,)),
        ("tyreStintsEndLaps", U8, (MAX_TYRE_STINTS,)),
    ]
    return np.dtype(fields)


def _lobby_info(fmt: int) -> np.dtype:
    return np.dtype(
        [
            ("aiControlled", U8),
            ("teamId", U16 if fmt >= 2026 else U8),
            ("nationality", U8),
            ("platform", U8),
            ("name", f"S{NAME_LEN[fmt]}"),
            ("carNumber", U8),
            ("yourTelemetry", U8),
            ("showOnlineNames", U8),
            ("techLevel", U16),
            ("readyStatus", U8),
        ]
    )


def _car_damage(fmt: int) -> np.dtype:
    fields: list[tuple] = [
        ("tyresWear", F32, (4,)),
        ("tyresDamage", U8, (4,)),
        ("brakesDamage", U8, (4,)),
    ]
    if fmt >= 2025:
        fields.append(("tyreBlisters", U8, (4,)))
    fields += [
        (name, U8)
        for name in (
            "frontLeftWingDamage",
            "frontRightWingDamage",
            "rearWingDamage",
            "floorDamage",
            "diffuserDamage",
            "sidepodDamage",
            "drsFault",
            "ersFault",
            "gearBoxDamage",
            "engineDamage",
            "engineMGUHWear",
            "engineESWear",
            "engineCEWear",
            "engineICEWear",
            "engineMGUKWear",
            "engineTCWear",
            "engineBlown",
            "engineSeized",
        )
    ]
    return np.dtype(fields)


LAP_HISTORY = np.dtype(
    [
        ("lapTimeInMS", U32),
        ("sector1TimeMSPart", U16),
        ("sector1TimeMinutesPart", U8),
        ("sector2TimeMSPart", U16),
        ("sector2TimeMinutesPart", U8),
        ("sector3TimeMSPart", U16),
        ("sector3TimeMinutesPart", U8),
        ("lapValidBitFlags", U8),
    ]
)
TYRE_STINT_HISTORY = np.dtype(
    [("endLap", U8), ("tyreActualCompound", U8), ("tyreVisualCompound", U8)]
)
TYRE_SET = np.dtype(
    [
        ("actualTyreCompound", U8),
        ("visualTyreCompound", U8),
        ("wear", U8),
        ("available", U8),
        ("recommendedSession", U8),
        ("lifeSpan", U8),
        ("usableLife", U8),
        ("lapDeltaTime", I16),
        ("fitted", U8),
    ]
)

_WHEELS = (4,)  # every wheel array is ordered RL, RR, FL, FR


def _motion_ex_fields(fmt: int) -> list[tuple]:
    fields: list[tuple] = [
        ("suspensionPosition", F32, _WHEELS),
        ("suspensionVelocity", F32, _WHEELS),
        ("suspensionAcceleration", F32, _WHEELS),
        ("wheelSpeed", F32, _WHEELS),
        ("wheelSlipRatio", F32, _WHEELS),
        ("wheelSlipAngle", F32, _WHEELS),
        ("wheelLatForce", F32, _WHEELS),
        ("wheelLongForce", F32, _WHEELS),
        ("heightOfCOGAboveGround", F32),
        ("localVelocityX", F32),
        ("localVelocityY", F32),
        ("localVelocityZ", F32),
        ("angularVelocityX", F32),
        ("angularVelocityY", F32),
        ("angularVelocityZ", F32),
        ("angularAccelerationX", F32),
        ("angularAccelerationY", F32),
        ("angularAccelerationZ", F32),
        ("frontWheelsAngle", F32),
        ("wheelVertForce", F32, _WHEELS),
        ("frontAeroHeight", F32),
        ("rearAeroHeight", F32),
        ("frontRollAngle", F32),
        ("rearRollAngle", F32),
        ("chassisYaw", F32),
    ]
    if fmt >= 2025:
        fields += [
            ("chassisPitch", F32),
            ("wheelCamber", F32, _WHEELS),
            ("wheelCamberGain", F32, _WHEELS),
        ]
    return fields


def _time_trial_data_set(fmt: int) -> np.dtype:
    return np.dtype(
        [
            ("carIdx", U8),
            ("teamId", U16 if fmt >= 2026 else U8),
            ("lapTimeInMS", U32),
            ("sector1TimeInMS", U32),
            ("sector2TimeInMS", U32),
            ("sector3TimeInMS", U32),
            ("tractionControl", U8),
            ("gearboxAssist", U8),
            ("antiLockBrakes", U8),
            ("equalCarPerformance", U8),
            ("customSetup", U8),
            ("valid", U8),
        ]
    )


CAR_TELEMETRY_2 = np.dtype(
    [
        ("activeAeroMode", U8),
        ("activeAeroAvailable", U8),
        ("activeAeroActivationDistance", U16),
        ("overtakeAvailable", U8),
        ("overtakeActive", U8),
        ("overtakeActivationDistance", U16),
        ("2026Regulations", U8),
        ("drivingWrongWay", U8),
    ]
)


def build_packet_dtypes(fmt: int) -> dict[int, np.dtype]:
    """Every packet type of packet format `fmt`, by packet id."""
    cars = (MAX_CARS[fmt],)
    dtypes = {
        0: _packet(("carMotionData", _car_motion(fmt), cars)),
        1: _packet(*_session_fields(fmt)),
        2: _packet(
            ("lapData", LAP_DATA, cars),
            ("timeTrialPBCarIdx", U8),
            ("timeTrialRivalCarIdx", U8),
        ),
        # The details are a union chosen by the event code: see events.py for each layout.
        3: _packet(("eventStringCode", "S4"), ("eventDetails", U8, (EVENT_DETAILS_SIZE,))),
        4: _packet(("numActiveCars", U8), ("participants", _participant(fmt), cars)),
        5: _packet(("carSetupData", CAR_SETUP, cars), ("nextFrontWingValue", F32)),
        6: _packet(
            ("carTelemetryData", _car_telemetry(fmt), cars),
            ("mfdPanelIndex", U8),
            ("mfdPanelIndexSecondaryPlayer", U8),
            ("suggestedGear", I8),
        ),
        7: _packet(("carStatusData", _car_status(fmt), cars)),
        8: _packet(("numCars", U8), ("classificationData", _final_classification(fmt), cars)),
        9: _packet(("numPlayers", U8), ("lobbyPlayers", _lobby_info(fmt), cars)),
        10: _packet(("carDamageData", _car_damage(fmt), cars)),
        11: _packet(
            ("carIdx", U8),
            ("numLaps", U8),
            ("numTyreStints", U8),
            ("bestLapTimeLapNum", U8),
            ("bestSector1LapNum", U8),
            ("bestSector2LapNum", U8),
            ("bestSector3LapNum", U8),
            ("lapHistoryData", LAP_HISTORY, (MAX_LAPS_IN_HISTORY,)),
            ("tyreStintsHistoryData", TYRE_STINT_HISTORY, (MAX_TYRE_STINTS,)),
        ),
        12: _packet(("carIdx", U8), ("tyreSetData", TYRE_SET, (MAX_TYRE_SETS,)), ("fittedIdx", U8)),
        13: _packet(*_motion_ex_fields(fmt)),
        14: _packet(
            ("playerSessionBestDataSet", _time_trial_data_set(fmt)),
            ("personalBestDataSet", _time_trial_data_set(fmt)),
            ("rivalDataSet", _time_trial_data_set(fmt)),
        ),
    }
    if fmt >= 2025:
        dtypes[15] = _packet(
            ("numLaps", U8),
            ("lapStart", U8),
            # [lap][vehicle index] -> position at the start of that lap, 0 if no record
            ("positionForVehicleIdx", U8, (MAX_LAPS_IN_LAP_POSITIONS, MAX_CARS[fmt])),
        )
    if fmt >= 2026:
        dtypes[16] = _packet(("carTelemetry2Data", CAR_TELEMETRY_2, cars))
    return dtypes
