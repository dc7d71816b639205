"""The session cookie: the ``Set-Cookie`` header and the checks of its text."""

from __future__ import annotations

from typing import Any, Mapping, Union

__all__ = ["CookieOption", "cookie_header", "validate_cookie"]

CookieOption = Union[None, str, Mapping[str, Any]]
"""``None``, a cookie name, or a dict with ``name`` and attributes."""


def cookie_header(cookie: CookieOption, sid: str) -> tuple[bytes, bytes] | None:
    """The ``Set-Cookie`` header that carries the session id, if one is configured.

    Attribute values may be strings, callables returning a value, or booleans
    (``True`` writes the bare attribute, ``False`` leaves it out).
    """
    if cookie is None:
        return None
    attrs: Mapping[str, Any]
    if isinstance(cookie, str):
        attrs = {"name": cookie, "path": "/", "SameSite": "Lax"}
    else:
        attrs = cookie
    parts = [f"{_cookie_text(attrs['name'])}={sid}"]
    for key, value in attrs.items():
        if key == "name":
            continue
        if callable(value):
            value = value()
        if value is False or value is None:
            continue
        if value is True:
            parts.append(_cookie_text(key))
        else:
            parts.append(f"{_cookie_text(key)}={_cookie_text(str(value))}")
    return (b"set-cookie", "; ".join(parts).encode("latin-1"))


def validate_cookie(cookie: CookieOption) -> None:
    """Raise ``ValueError`` now for cookie text that could never be written safely."""
    if cookie is None:
        return
    attrs: Mapping[str, Any] = {"name": cookie} if isinstance(cookie, str) else cookie
    for key, value in attrs.items():
        _cookie_text(key)
        if isinstance(value, str):
            _cookie_text(value)


def _cookie_text(value: Any) -> str:
    text = str(value)
    if any(c in text for c in ";\r\n") or not text.isprintable():
        raise ValueError(f"cookie text {text!r} would break the Set-Cookie header")
    return text
