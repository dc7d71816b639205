"""ours.py's echo app, with ``engineio_asgi.tune_gc()`` called once it is built (as a deployment would)."""

from _echo import make_app

import engineio_asgi

eio, app = make_app(engineio_asgi)
engineio_asgi.tune_gc()
