"""The reliability battery: real servers on 127.0.0.1, hostile clients, fuzzing, load.

Tests marked ``stress`` or ``fuzz`` are skipped unless the marker is selected
explicitly (``pytest -m stress``, ``pytest -m fuzz``), so the default run stays short.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
from servers import running_server

from .support import APP, BAD_INPUT_SERVERS, BASE_ENV

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("markexpr") or ""
    for item in items:
        if not str(item.path).startswith(HERE):
            continue
        for marker in ("stress", "fuzz"):
            if item.get_closest_marker(marker) is not None and marker not in markexpr:
                item.add_marker(pytest.mark.skip(reason=f"long run: select it with -m {marker}"))


@pytest.fixture(scope="module", params=BAD_INPUT_SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The reliability app on a real server, heartbeat 1 s + 1 s, max size 100 kB."""
    with running_server(APP, request.param, env=BASE_ENV) as srv:
        yield srv
        assert srv.is_alive(), f"{srv.name} died:\n{srv.stderr_text()[-3000:]}"
