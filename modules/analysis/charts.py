"""The charts people make from FastF1, as plotly figures of a Session's tables.

The report puts them on one page; the dashboard's compare page draws `compare_figure`'s data
with the same plotly (served from the installed package).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .telemetry import common_distance, resample

COMPOUND_COLOURS = {
    "SOFT": "#da291c",
    "MEDIUM": "#ffd12e",
    "HARD": "#f0f0ec",
    "INTERMEDIATE": "#43b02a",
    "WET": "#0067ad",
}
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 40}}


def _seconds(series: pd.Series) -> pd.Series:
    return series.dt.total_seconds()


def lap_times(laps: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for driver, rows in laps[~laps["Deleted"]].groupby("Driver", sort=False):
        figure.add_scatter(
            x=rows["LapNumber"], y=_seconds(rows["LapTime"]), mode="lines+markers", name=driver
        )
    figure.update_layout(title="Lap times", xaxis_title="lap", yaxis_title="lap time (s)", **LAYOUT)
    return figure


def positions(laps: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for driver, rows in laps.groupby("Driver", sort=False):
        figure.add_scatter(x=rows["LapNumber"], y=rows["Position"], mode="lines", name=driver)
    figure.update_layout(title="Position per lap", xaxis_title="lap", **LAYOUT)
    figure.update_yaxes(title="position", autorange="reversed", dtick=1)
    return figure


def gap_to_leader(laps: pd.DataFrame) -> go.Figure:
    """Each driver's time at the line behind the first car to finish that lap."""
    figure = go.Figure()
    timed = laps.dropna(subset=["Time"])
    leader = timed.groupby("LapNumber")["Time"].min()
    for driver, rows in timed.groupby("Driver", sort=False):
        gap = _seconds(rows["Time"] - leader.loc[rows["LapNumber"]].to_numpy())
        figure.add_scatter(x=rows["LapNumber"], y=gap, mode="lines+markers", name=driver)
    figure.update_layout(
        title="Gap to the leader", xaxis_title="lap", yaxis_title="gap (s)", **LAYOUT
    )
    figure.update_yaxes(autorange="reversed")
    return figure


def tyre_strategy(laps: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    shown: set[str] = set()
    drivers = list(dict.fromkeys(laps.sort_values("Position", kind="stable")["Driver"]))
    for driver in drivers:
        rows = laps[laps["Driver"] == driver]
        for _, stint in rows.groupby("Stint"):
            compound = str(stint["Compound"].iloc[0] or "UNKNOWN")
            figure.add_bar(
                y=[driver],
                x=[len(stint)],
                base=[int(stint["LapNumber"].min()) - 1],
                orientation="h",
                name=compound,
                legendgroup=compound,
                showlegend=compound not in shown,
                marker={"color": COMPOUND_COLOURS.get(compound, "#999"), "line": {"width": 1}},
            )
            shown.add(compound)
    figure.update_layout(
        title="Tyre strategy",
        xaxis_title="lap",
        barmode="overlay",
        height=max(300, 26 * len(drivers) + 100),
        **LAYOUT,
    )
    figure.update_yaxes(autorange="reversed")
    return figure


def sectors(laps: pd.DataFrame) -> go.Figure:
    """Every driver's best time in each sector (valid laps)."""
    valid = laps[~laps["Deleted"]]
    best = valid.groupby("Driver", sort=False)[["Sector1Time", "Sector2Time", "Sector3Time"]].min()
    figure = go.Figure()
    for number in (1, 2, 3):
        column = f"Sector{number}Time"
        figure.add_bar(x=best.index, y=_seconds(best[column]), name=f"sector {number}")
    figure.update_layout(
        title="Best sector times", barmode="group", yaxis_title="time (s)", **LAYOUT
    )
    return figure


def compare_data(reference: pd.DataFrame, compared: pd.DataFrame) -> dict:
    """Both laps' speed, throttle, brake on one distance axis, and the delta: plain lists."""
    distance = common_distance(reference, compared)
    ref, cmp = resample(reference, distance), resample(compared, distance)

    def clean(values: pd.Series) -> list:
        return [None if not np.isfinite(v) else round(float(v), 4) for v in values]

    return {
        "distance": clean(pd.Series(distance)),
        "delta": clean(cmp["Time"] - ref["Time"]),
        "laps": [
            {column.lower(): clean(lap[column]) for column in ("Speed", "Throttle", "Brake")}
            for lap in (ref, cmp)
        ],
    }


def compare_figure(
    reference: pd.DataFrame, compared: pd.DataFrame, names: tuple[str, str]
) -> go.Figure:
    data = compare_data(reference, compared)
    figure = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[0.4, 0.2, 0.2, 0.2],
        subplot_titles=("speed (km/h)", "throttle (%)", "brake (%)", f"delta to {names[0]} (s)"),
    )
    colours = ("#1f77b4", "#d62728")
    for lap, name, colour in zip(data["laps"], names, colours, strict=True):
        for row, key in enumerate(("speed", "throttle", "brake"), start=1):
            figure.add_scatter(
                x=data["distance"],
                y=lap[key],
                name=name,
                legendgroup=name,
                showlegend=row == 1,
                line={"color": colour, "width": 1.5},
                row=row,
                col=1,
            )
    figure.add_scatter(
        x=data["distance"],
        y=data["delta"],
        name=f"{names[1]} - {names[0]}",
        line={"color": "#444"},
        row=4,
        col=1,
    )
    figure.update_xaxes(title="distance (m)", row=4, col=1)
    figure.update_layout(title=f"{names[0]} vs {names[1]}", height=800, **LAYOUT)
    return figure
