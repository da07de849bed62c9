"""The Parsec client: :class:`Client` and its pieces (session, ledger, event bus, config)."""
from __future__ import annotations

from .bus import EventStream
from .client import Client, FrameHook, MessageHook
from .config import ClientConfig, ClientOptions
from .metrics import ClientMetrics
from .runner import run

__all__ = ["Client", "ClientConfig", "ClientOptions", "ClientMetrics", "EventStream", "run",
           "FrameHook", "MessageHook"]
