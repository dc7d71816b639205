"""Echo app on this project's server (engineio_asgi), same API as python-engineio."""

from _echo import make_app

import engineio_asgi

eio, app = make_app(engineio_asgi)
