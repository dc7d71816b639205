"""A python-engineio application, as its docs would write it; only the import changed.

The original line was ``import engineio``.
"""

import engineio_asgi as engineio

eio = engineio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = engineio.ASGIApp(eio, static_files={"/": {"content_type": "text/html", "filename": __file__}})

blacklisted = {"6.6.6.6"}


@eio.on("connect")
async def connect(sid, environ):
    if environ["REMOTE_ADDR"] in blacklisted or "token=bad" in environ.get("QUERY_STRING", ""):
        return False  # reject
    async with eio.session(sid) as session:
        session["username"] = "user-" + sid[:4]
        session["count"] = 0


@eio.on("message")
async def message(sid, data):
    async with eio.session(sid) as session:
        session["count"] += 1
        count = session["count"]
        username = session["username"]
    if isinstance(data, bytes):
        await eio.send(sid, data[::-1])
    else:
        await eio.send(sid, {"echo": data, "from": username, "count": count})


@eio.on("disconnect")
def disconnect(sid, reason):
    print("disconnect", sid, reason, flush=True)
