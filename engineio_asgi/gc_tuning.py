"""An opt-in setting of Python's garbage collector for servers that hold many sessions.

Nothing here runs unless the application calls :func:`tune_gc`: the collector is
the whole process's, so the choice is the deployment's, not the library's.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(young: int = 50_000, middle: int = 2, *, freeze: bool = True) -> tuple[int, int, int]:
    """Make the collector run less often, and never again walk what exists now.

    CPython starts a collection of its youngest generation whenever 700 more
    container objects are alive than after the previous one. A server with many
    sessions and messages in flight crosses that all the time; each such
    collection moves whatever is alive at that moment (a message's handler, a
    heartbeat's wait) one generation up, and once the oldest generation has
    grown by a quarter a full collection walks every object of every session
    (about 0.5 s at 10,000 websocket sessions). With ``young`` at 50,000 the
    youngest generation is collected only after that many more objects are alive,
    which a steady load (sessions held, messages coming and going) rarely
    reaches: few collections, little promoted, full collections rare. ``middle``
    (the collector's second threshold) keeps the middle generation small, so
    that each of its collections stays short. ``freeze`` first collects, then
    moves everything alive now (the imported modules, the application) out of
    the collector's sight for good, as ``gc.freeze()`` does: call it once at
    startup, after the application is built and before it serves.

    Reference cycles are still collected, later than by default: memory held by
    cyclic garbage can grow by up to ``young`` objects' worth before it is freed.

    Returns the thresholds it replaced (``gc.set_threshold(*previous)`` undoes
    it; ``gc.unfreeze()`` undoes the freeze).
    """
    for name, value in (("young", young), ("middle", middle)):
        if type(value) is not int or value < 1:
            raise ValueError(f"tune_gc: {name} must be a positive int, not {value!r}")
    if type(freeze) is not bool:
        raise ValueError(f"tune_gc: freeze must be True or False, not {freeze!r}")
    previous = gc.get_threshold()
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(young, middle, previous[2])
    return previous
