"""Sphinx configuration for the engineio_asgi documentation.

Built by ``.ci/build-docs`` with warnings as errors. Pages are Markdown (MyST);
the API pages come from the docstrings through autodoc, which reads their
reStructuredText roles (``:class:``, ``:meth:``) as they are written.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

project = "engineio_asgi"
author = "the engineio_asgi authors"
copyright = "the engineio_asgi authors"  # noqa: A001 - Sphinx's name for it
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "separated"
autodoc_default_options = {"members": True}

# No network at build time, so no intersphinx: references to the standard library and
# to anyio stay plain text instead of failing the nitpicky build.
nitpick_ignore_regex = [
    ("py:class", r"(enum|logging|collections|contextlib|typing|types|anyio|asyncio|trio)\..*"),
    ("py:class", r"prometheus_client\..*"),  # engineio_asgi.metrics: an optional extra
    ("py:class", r".*\._[A-Za-z]\w*"),  # private helper classes named in return types
]

html_theme = "furo"
html_title = "engineio_asgi"
html_static_path: list[str] = []
pygments_style = "sphinx"


def _viewcode_module(app: Any, modname: str | None, fullname: str | None) -> str | None:
    """Which module's source page a documented object links to (viewcode's hook).

    A ``NamedTuple``'s generated ``__new__``, documented on its own because of
    ``autodoc_class_signature = "separated"``, names ``namedtuple_<Class>`` as its
    module. No such module exists, so viewcode writes no page for it but still
    lists it in the module-source index, as a link to nothing. Such an object is
    credited to the module of the class that holds it instead; for everything
    else, returning ``None`` leaves viewcode's own answer in place.
    """
    if not modname or not fullname:
        return None
    try:
        obj: Any = importlib.import_module(modname)
    except ImportError:
        return None
    owner = modname
    for part in fullname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
        declared = getattr(obj, "__module__", None)
        if not isinstance(declared, str):
            return None
        if declared not in sys.modules:
            return owner
        owner = declared
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("viewcode-follow-imported", _viewcode_module)
    return {"parallel_read_safe": True}
