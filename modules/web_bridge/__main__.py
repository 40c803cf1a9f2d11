"""The web bridge: a live dashboard (/), an admin page (/admin), REST under /api with OpenAPI
docs (/docs) and a WebSocket (/ws), all fed from LSL. Commands (DefaultServer, port 8105):
STATUS, RELOAD. Bound beyond 127.0.0.1, writes and /admin need --token (or RACEPLANE_WEB_TOKEN).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import sqlite3
import sys
import threading
import time
from typing import Any

import uvicorn
import uvloop

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args

from .app import Parts, create_app
from .feeds import EXPECTED, OBSERVE_KEEP_S, Feeds
from .hub import Hub
from .league import LeagueService
from .links import Link, parse_address
from .logtail import LogTail

MAX_WS_MESSAGE = 64 * 1024
TOKEN_ENV = "RACEPLANE_WEB_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Bridge:
    """The parts of one bridge process and their lifecycles."""

    def __init__(self, args: Any, logger: Any) -> None:
        self.args = args
        self.logger = logger
        self.started = time.monotonic()
        self.feeds = Feeds(
            self._publish,
            logger,
            expected=args.expect or EXPECTED,
            observe_keep_s=args.observe_keep_s,
        )
        self.hub = Hub(self._snapshot, lambda: self.feeds.frame, logger)
        self.logs = LogTail(args.log_host, args.log_port, self._publish)
        self.lap_timer = Link("lap_timer", *parse_address(args.lap_timer))
        self.recorder = Link("recorder", *parse_address(args.recorder))
        self.token = args.token or os.environ.get(TOKEN_ENV) or None
        league = None
        if args.league:
            league = LeagueService(args.league, args.league_db, self.lap_timer, self._publish)
        parts = Parts(
            self.feeds,
            self.hub,
            self.logs,
            self.lap_timer,
            self.recorder,
            None if is_loopback(args.http_host) else self.token,
            self.status,
            league,
        )
        config = uvicorn.Config(
            create_app(parts),
            host=args.http_host,
            port=args.http_port,
            # uvicorn's own dictConfig would close every handler already installed,
            # the central log's sender included; its loggers just get a level.
            log_config=None,
            log_level="warning",
            ws_max_size=MAX_WS_MESSAGE,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve_http, name="web-http", daemon=True)

    def _publish(self, messages: list) -> None:
        self.hub.publish(messages)

    def _snapshot(self) -> dict[str, Any]:
        with self.feeds.lock:
            snapshot = self.feeds.state.snapshot()
        return {**snapshot, "logs": self.logs.recent(50), "inputs": self.feeds.inputs()}

    def _serve_http(self) -> None:
        # uvloop (uvicorn[standard] brings it): every WebSocket send is a transport write, and
        # with hundreds of clients its cheaper writes and wake-ups are what the loop does most.
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        self.hub.loop = loop
        probe = loop.create_task(self.hub.probe_lag())
        try:
            loop.run_until_complete(self.server.serve())
        finally:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(probe)
            self.hub.loop = None
            loop.close()

    def start(self) -> None:
        self.feeds.start()
        self.logs.start()
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            where = f"{self.args.http_host}:{self.args.http_port}"
            raise OSError(f"HTTP server did not start on {where}")

    def stop(self) -> None:
        # Ask every part to stop before waiting on any, so their waits (a resolve or a stream
        # being opened in the feed, a read in the log tail, the HTTP server's shutdown) overlap.
        self.server.should_exit = True
        self.logs.request_stop()
        self.feeds.request_stop()
        self._thread.join(timeout=10)
        self.logs.stop()
        self.feeds.stop()

    # ---- commands --------------------------------------------------------------------------

    def commands(self) -> dict[str, Any]:
        return {"STATUS": self.status, "RELOAD": self.reload, "SOURCE": self.source}

    def status(self) -> dict[str, Any]:
        with self.feeds.lock:
            session = self.feeds.state.session
            sessions = list(self.feeds.state.standings)
        return {
            "name": "web_bridge",
            "uptime_s": round(time.monotonic() - self.started, 1),
            "url": f"http://{self.args.http_host}:{self.server.config.port}/",
            "token_required": not is_loopback(self.args.http_host),
            "source": self.feeds.source_status(),
            "streams": self.feeds.describe(),
            "observable": self.feeds.observable(),
            "inputs": self.feeds.inputs(),
            "merge": self.feeds.merge_status(),
            "websocket": self.hub.status(),
            "log_tail_connected": self.logs.connected,
            "session": session,
            "sessions": sessions,
            "lap_timer": f"{self.lap_timer.host}:{self.lap_timer.port}",
            "recorder": f"{self.recorder.host}:{self.recorder.port}",
        }

    def source(self, source: str | None = None) -> dict[str, Any]:
        """SOURCE {source?}: which session data the dashboard shows; "live" (the newest live
        producer) or a producer from `sources`, e.g. a replay. No payload: just say."""
        if source is None:
            return self.feeds.source_status()
        return self.feeds.pick_source(source)

    def reload(self) -> dict[str, Any]:
        """Reconnect every stream (after producers moved or restarted under new ids)."""
        dropped = self.feeds.rediscover()
        self.logger.info("RELOAD: reconnecting %d streams", len(dropped))
        return {"reconnecting": dropped}


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("web_bridge", 8105, __doc__)
    parser.add_argument("--http-host", default="127.0.0.1", help="address the web server binds")
    parser.add_argument("--http-port", type=int, default=8050, help="web server port")
    parser.add_argument("--lap-timer", default="127.0.0.1:8103", help="lap timer HOST:PORT")
    parser.add_argument("--recorder", default="127.0.0.1:8104", help="recorder HOST:PORT")
    parser.add_argument(
        "--expect",
        action="append",
        default=None,
        metavar="STREAM",
        help="a stream the dashboard needs, reported when missing (repeatable; default: "
        "the decoder's live streams and the lap timer's)",
    )
    parser.add_argument(
        "--observe-keep-s",
        type=float,
        default=OBSERVE_KEEP_S,
        help="how long a stream only the observer endpoints read stays open after a request",
    )
    parser.add_argument(
        "--token", default=None, help=f"write/admin token off loopback (env {TOKEN_ENV})"
    )
    parser.add_argument(
        "--league", default=None, metavar="LEAGUE.toml", help="serve this league (/league)"
    )
    parser.add_argument(
        "--league-db", default=None, help="the league's database (default: beside the file)"
    )
    args = parse_module_args(parser, argv)
    for option in ("lap_timer", "recorder"):
        try:
            parse_address(getattr(args, option))
        except ValueError as error:
            parser.error(f"--{option.replace('_', '-')}: {error}")
    if not is_loopback(args.http_host) and not (args.token or os.environ.get(TOKEN_ENV)):
        parser.error(
            f"--http-host {args.http_host} is reachable from other machines: give --token "
            f"(or {TOKEN_ENV}) so writes and /admin are protected"
        )
    logger = get_logger("web_bridge", log_host=args.log_host, log_port=args.log_port)
    try:
        bridge = Bridge(args, logger)
    except (ValueError, sqlite3.Error) as error:  # a wrong league file: each problem's line
        parser.error(str(error))
    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map=bridge.commands(),
        name="web_bridge",
        logger=logger,
    )
    server.init_server()
    try:
        bridge.start()
    except OSError as error:
        logger.error("%s", error)
        bridge.stop()
        return 1
    logger.info("dashboard on http://%s:%d/", args.http_host, bridge.server.config.port)
    try:
        server.start_listening()
    finally:
        bridge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
