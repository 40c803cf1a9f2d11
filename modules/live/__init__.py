"""Python access to a live session: callbacks on live data, a remote observer of the web
bridge, and a store for your own values (README: "Your own code against a live session")."""

from modules.live.client import LiveClient
from modules.live.observer import ObserverError, RemoteObserver, TokenRefused
from modules.live.records import Record, Telemetry
from modules.live.store import SessionStore, StoreData, load_store

__all__ = [
    "LiveClient",
    "ObserverError",
    "Record",
    "RemoteObserver",
    "SessionStore",
    "StoreData",
    "Telemetry",
    "TokenRefused",
    "load_store",
]
