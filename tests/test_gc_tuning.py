"""engineio_asgi.tune_gc(): the collector's thresholds and freeze, and its bad arguments."""

from __future__ import annotations

import gc
from typing import Any

import pytest

import engineio_asgi


@pytest.fixture
def restore_gc() -> Any:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_raises_the_young_threshold_and_freezes_what_lives() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    oldest = before[2]
    alive = [[n] for n in range(1000)]  # tracked containers that exist at the call
    previous = engineio_asgi.tune_gc()
    assert previous == before  # the thresholds it replaced, to undo it
    assert gc.get_threshold() == (50_000, 2, oldest)
    assert gc.get_freeze_count() >= len(alive)  # out of every later collection's sight
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    engineio_asgi.tune_gc(10_000, 5, freeze=False)
    assert gc.get_threshold() == (10_000, 5, oldest) and gc.get_freeze_count() == 0
    assert frozen > 0


@pytest.mark.usefixtures("restore_gc")
@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ((0,), {}, "young"),
        (("50000",), {}, "young"),
        ((50_000, 0), {}, "middle"),
        ((), {"freeze": 1}, "freeze"),
    ],
)
def test_tune_gc_names_a_bad_argument(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match=f"tune_gc: {name} "):
        engineio_asgi.tune_gc(*args, **kwargs)
    assert gc.get_threshold() == before  # nothing changed
