"""Socket.IO emit-echo app: python-socketio on this project's server (engineio_asgi.socketio)."""

from _sio_echo import make_app

from engineio_asgi.socketio import ASGIApp, AsyncServer

sio, app = make_app(AsyncServer, ASGIApp)
