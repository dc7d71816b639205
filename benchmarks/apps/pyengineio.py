"""Echo app on python-engineio (the reference implementation being compared)."""

import engineio
from _echo import make_app

eio, app = make_app(engineio)
