"""Exceptions an application may raise or catch."""

from __future__ import annotations

from typing import Any

__all__ = ["ConnectionRefusedError", "EngineIOError"]


class EngineIOError(Exception):
    """Base class of this package's exceptions."""


class ConnectionRefusedError(EngineIOError):  # noqa: A001 - the name python-engineio apps use
    """Raise from a ``connect`` handler to refuse the connection.

    The arguments become the JSON body of the 401 response: one argument as
    it is, several as a list, none as ``"Unauthorized"``.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if len(args) == 0:
            self.error_args: Any = None
        elif len(args) == 1:
            self.error_args = args[0]
        else:
            self.error_args = list(args)
