"""Socket.IO emit-echo app: python-socketio on python-engineio (its default Engine.IO layer)."""

import socketio
from _sio_echo import make_app

sio, app = make_app(socketio.AsyncServer, socketio.ASGIApp)
