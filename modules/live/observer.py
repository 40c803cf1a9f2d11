"""A remote observer of a running stack: a Python client of the web bridge's HTTP API.

    observer = RemoteObserver("http://racing-pc:8050", token="...")  # or RACEPLANE_WEB_URL
    last = observer.get_last_values()          # {stream: {channel: value}}; remembers their time
    data = observer.get_logged_data("raceplane.car_telemetry", ["car00.speed_kph"])
    observer.standings(); observer.laps(car=0); observer.session()

What pymanip's RemoteObserver offers, for Raceplane: the last value of every variable, the
data logged since then (the bridge keeps about 30 s), and the session's standings and laps.
A bridge bound beyond loopback wants its token for the raw data; a wrong token is refused.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

URL_ENV = "RACEPLANE_WEB_URL"
DEFAULT_URL = "http://127.0.0.1:8050"


class ObserverError(RuntimeError):
    """The web bridge could not be reached, or refused the request (the text says why)."""


class TokenRefused(ObserverError):
    """The web bridge wants a token and was given none, or a wrong one."""


class RemoteObserver:
    def __init__(
        self, url: str | None = None, token: str | None = None, timeout_s: float = 5.0
    ) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._last_t: dict[str, float] = {}  # per stream: the time get_last_values saw

    def get_last_values(self, stream: str | None = None) -> dict[str, dict[str, float | None]]:
        """The newest value of every numeric channel, per stream; later get_logged_data calls
        return what was logged after these values."""
        newest = self._get("/api/channels", stream=stream)
        for name, entry in newest.items():
            if entry["t"] is not None:
                self._last_t[name] = entry["t"]
        return {name: entry["values"] for name, entry in newest.items()}

    def get_logged_data(
        self, stream: str, channels: list[str], since: float | None = None
    ) -> dict[str, dict[str, list]]:
        """{channel: {"t": [...], "values": [...]}}: the samples stamped after `since` (LSL
        time; default: the time of the last get_last_values of that stream)."""
        start = since if since is not None else self._last_t.get(stream, 0.0)
        result = {}
        for channel in channels:
            path = "/api/channels/{}/{}".format(*(urllib.parse.quote(p) for p in (stream, channel)))
            data = self._get(path, since=start)
            result[channel] = {"t": data["t"], "values": data["values"]}
        return result

    def streams(self) -> list[dict[str, Any]]:
        return self._get("/api/streams")

    def standings(self, session_uid: str | None = None) -> dict[str, Any]:
        return self._get("/api/standings", session_uid=session_uid)

    def laps(self, car: int | None = None, session_uid: str | None = None) -> list[dict]:
        return self._get("/api/laps", car=car, session_uid=session_uid)

    def session(self) -> dict[str, Any]:
        return self._get("/api/session")

    def _get(self, path: str, **query: Any) -> Any:
        params = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            detail = _detail(error)
            if error.code == 401:
                given = "a wrong token" if self.token is not None else "no token"
                raise TokenRefused(
                    f"the web bridge at {self.url} refused {given}: {detail}"
                ) from None
            raise ObserverError(f"GET {path}: {error.code} {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ObserverError(f"cannot reach the web bridge at {self.url}: {reason}") from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        return error.reason or ""
    return str(body.get("detail", error.reason)) if isinstance(body, dict) else str(body)
