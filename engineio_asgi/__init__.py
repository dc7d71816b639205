"""engineio_asgi: python-engineio's ``AsyncServer`` API as a pure ASGI application.

Runs under any ASGI server, on asyncio or trio; the protocol itself lives in
:mod:`engineio_sansio`.
"""

from . import exceptions
from .asgi import ASGIApp, get_static_file
from .gc_tuning import tune_gc
from .server import AsyncServer, reason

__all__ = ["ASGIApp", "AsyncServer", "exceptions", "get_static_file", "reason", "tune_gc"]
