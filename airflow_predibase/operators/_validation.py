"""Checks a parameter passes before any request is sent: names the platform can address and
numbers JSON can carry.

Each check raises ValueError naming the field and what is valid; the operators turn it into
`PredibaseInvalidParameter` (not retried). A value that still holds Jinja is left alone: it is
checked again once rendered. See docs/reliability.md#clear-errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Characters that cannot sit in one URL path segment the platform reads back: `/` and `\`
#: split the path, `?` `#` end it, `%` starts an escape (gateways decode `%2F` to `/`).
#: Deliberately narrow: the platform may refuse more, and says so with a 400 (not retried).
_UNADDRESSABLE = re.compile(r"[/\\?#%\x00-\x1f\x7f]")

NAME_RULE = (
    "a name is non-empty text without '/', '\\', '?', '#', '%', control characters or "
    "leading/trailing spaces, e.g. 'support-tickets' (the platform reads it back as one URL "
    "path segment)"
)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def check_name(field: str, value: Any) -> Any:
    """`value`, if it is a resource name the platform can address (GET /<kind>/<name>);
    ValueError naming `field` otherwise.

    What is not a string yet is returned unchecked: Jinja, or an XComArg when the DAG is
    parsed (the operator checks again once rendered). None is never a name.
    """
    if value is None:
        raise ValueError(f"{field} is required; {NAME_RULE}")
    if not isinstance(value, str) or _templated(value):
        return value
    if not value.strip():
        raise ValueError(
            f"{field}={value!r} is empty (did a template render to nothing?); {NAME_RULE}"
        )
    if value != value.strip() or value in (".", "..") or _UNADDRESSABLE.search(value):
        raise ValueError(f"{field}={value!r} is not a valid name: {NAME_RULE}")
    return value


def check_finite(field: str, value: Any) -> None:
    """ValueError if a number anywhere in `value` (a mapping, a list, a number) is infinite
    or NaN: JSON cannot carry it, and no setting means it."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field}={value!r} is not a finite number")
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_finite(f"{field}.{key}", item)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            check_finite(f"{field}[{index}]", item)
