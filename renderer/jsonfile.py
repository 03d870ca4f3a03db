"""JSON as plotboard writes and reads it: never `NaN`, `Infinity` or `-Infinity`.

Python's json writes those for non-finite floats unless told not to, and reads them (and
`1e400`, as inf) back; a browser's JSON.parse rejects the whole document, so one such number
in status.json would blind every open page. plotboard writes with `allow_nan=False` and reads
its own files with `loads`, which refuses them, so a file holding one counts as unreadable.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(obj: Any, **kw: Any) -> str:
    """json.dumps that raises ValueError instead of writing a non-finite number."""
    return json.dumps(obj, allow_nan=False, **kw)


# dumps(obj, separators=(",", ":")), with its encoder made once: json.dumps makes one a call
# when given options, a good part of the cost of the small objects the daemon encodes per render.
compact = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def loads(text: str | bytes) -> Any:
    """json.loads that raises ValueError on NaN, Infinity and numbers too large for a float."""
    return json.loads(text, parse_constant=_constant, parse_float=_finite)


def _constant(name: str) -> float:
    raise ValueError(f"not a finite number: {name}")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text}")
    return value
