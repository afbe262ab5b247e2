"""Helpers shared by the modules of the package: status checks and argument parsing."""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import numpy as np

from . import _native
from .errors import InvalidArgumentError, make_error


def status_string(status: int) -> str:
    """The C library's short description of a status."""
    return _native.text(_native.lib().mnv3_status_string(int(status))) or f"status {status}"


def check(status: int, error: Optional[_native.Error] = None,
          context: Optional[str] = None) -> None:
    """Raises the :class:`mnv3.Error` subclass of ``status`` unless it is MNV3_OK, with the
    message the library wrote into ``error`` (else its status string), after ``context``
    unless the message already names it."""
    if status == _native.OK:
        return
    text = ""
    if error is not None and error.status == status:
        text = _native.text(error.message)
    if not text:
        text = status_string(status)
    if context and context not in text:
        text = f"{context}: {text}"
    raise make_error(status, text)


def choice(value: object, what: str, names: Dict[str, int],
           aliases: Optional[Dict[str, str]] = None) -> Tuple[str, int]:
    """A case-insensitive name from ``names`` (or ``aliases``) and its C value."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be one of {', '.join(names)} "
                                   f"(got {value!r})")
    key = value.lower()
    if aliases:
        key = aliases.get(key, key)
    if key not in names:
        raise InvalidArgumentError(f"unknown {what} {value!r} (expected one of "
                                   f"{', '.join(names)})")
    return key, names[key]


def integer(value: object, what: str, low: int, high: int) -> int:
    """An int in [low, high] (numpy integers accepted; bools and floats are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{what} must be an integer (got {value!r})")
    v = int(value)
    if not low <= v <= high:
        raise InvalidArgumentError(f"{what} must be in {low}...{high} (got {v})")
    return v


def input_size(size: Union[None, int, Tuple[int, int]], default: Tuple[int, int],
               what: str = "input size") -> Tuple[int, int]:
    """(height, width) from None (the default), a side, or a (height, width) pair, each in
    the library's range of input sizes."""
    if size is None:
        h, w = default
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    else:
        try:
            h, w = size  # type: ignore[misc]
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{what} is a side or a (height, width) pair "
                                       f"(got {size!r})") from None
    lo, hi = _native.MIN_INPUT_SIZE, _native.MAX_INPUT_SIZE
    return (integer(h, f"{what} height", lo, hi), integer(w, f"{what} width", lo, hi))
