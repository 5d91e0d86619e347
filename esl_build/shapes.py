"""Structural checks of untrusted JSON-like data (manifests, config files), naming the field.

Manifests and configs arrive through pull requests, so they are checked before any code looks
inside them. A shape is a plain function ``check(value, field)`` that returns nothing or
raises ``ShapeError`` naming the dotted field that is wrong::

    RECORD = obj({"backend": text(), "cost": obj({"characters": integer(minimum=0)})})
    RECORD({"backend": "espeak", "cost": {"characters": "x"}}, "stages.tts")
    # ShapeError: stages.tts.cost.characters: must be an integer

Hand-written rather than a JSON Schema validator: it costs a few dict lookups per field (a
no-op build may read every manifest), needs no run-time dependency, and its messages name
the field the way users see it. ``esl_build/schemas/manifest.schema.json`` says the same and
a test keeps the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Shape = Callable[[Any, str], None]

MAX_DEPTH = 16  # deeper than anything esl-build writes; bounds recursion on hostile input


class ShapeError(ValueError):
    """``field`` (dotted, e.g. ``stages.tts.outputs``) is not what it must be."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}" if field else message)


def join(field: str, key: str) -> str:
    """The dotted name of ``key`` inside ``field``."""
    return f"{field}.{key}" if field else key


def obj(required: Mapping[str, Shape], optional: Mapping[str, Shape] | None = None, *,
        extra: Shape | None = None) -> Shape:
    """An object with these keys; other keys are refused unless ``extra`` checks them."""
    known = {**required, **(optional or {})}

    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise ShapeError(field, "must be an object")
        for key in required:
            if key not in value:
                raise ShapeError(join(field, key), "is missing")
        for key, item in value.items():
            shape = known.get(key, extra)
            if shape is None:
                raise ShapeError(join(field, str(key)), "is not a known field")
            shape(item, join(field, key))
    return check


def mapping(values: Shape, *, keys: str | None = None, what: str = "key") -> Shape:
    """An object whose every value has shape ``values`` (and key matches ``keys``, a regex)."""
    pattern = re.compile(keys) if keys else None

    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise ShapeError(field, "must be an object")
        for key, item in value.items():
            if pattern is not None and not pattern.fullmatch(key):
                raise ShapeError(join(field, key), f"is not a valid {what}")
            values(item, join(field, key))
    return check


def text(*, pattern: str | None = None, min_length: int = 0, what: str = "") -> Shape:
    """A string (matching ``pattern`` if given; ``what`` names that form in messages)."""
    compiled = re.compile(pattern) if pattern else None
    form = what or f"of the form {pattern!r}"

    def check(value: Any, field: str) -> None:
        if not isinstance(value, str):
            raise ShapeError(field, "must be a string")
        if len(value) < min_length:
            raise ShapeError(field, "must not be empty")
        if compiled is not None and not compiled.fullmatch(value):
            raise ShapeError(field, f"must be {form}")
    return check


def integer(*, minimum: int | None = None) -> Shape:
    """An integer (not a boolean), at least ``minimum``."""
    def check(value: Any, field: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ShapeError(field, "must be an integer")
        if minimum is not None and value < minimum:
            raise ShapeError(field, f"must be at least {minimum}")
    return check


def number(*, minimum: float | None = None) -> Shape:
    """A number (integer or float, not a boolean), at least ``minimum``."""
    def check(value: Any, field: str) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ShapeError(field, "must be a number")
        if minimum is not None and value < minimum:
            raise ShapeError(field, f"must be at least {minimum}")
    return check


def boolean(value: Any, field: str) -> None:
    """true or false."""
    if not isinstance(value, bool):
        raise ShapeError(field, "must be true or false")


def const(expected: Any) -> Shape:
    """Exactly ``expected``."""
    def check(value: Any, field: str) -> None:
        if value != expected or type(value) is not type(expected):
            raise ShapeError(field, f"must be {expected!r}")
    return check


def nullable(shape: Shape) -> Shape:
    """null, or ``shape``."""
    def check(value: Any, field: str) -> None:
        if value is not None:
            shape(value, field)
    return check


def either(*shapes: Shape, message: str) -> Shape:
    """The first of ``shapes`` that fits; ``message`` when none does."""
    def check(value: Any, field: str) -> None:
        for shape in shapes:
            try:
                shape(value, field)
                return
            except ShapeError:
                continue
        raise ShapeError(field, message)
    return check


def json_value(*, max_depth: int = MAX_DEPTH) -> Shape:
    """Any JSON value nested at most ``max_depth`` levels (objects and arrays)."""
    def walk(value: Any, field: str, depth: int) -> None:
        if isinstance(value, dict | list):
            if depth >= max_depth:
                raise ShapeError(field, f"is nested more than {max_depth} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                walk(item, join(field, str(key)), depth + 1)

    def check(value: Any, field: str) -> None:
        walk(value, field, 0)
    return check


def json_object(*, max_depth: int = MAX_DEPTH) -> Shape:
    """A JSON object nested at most ``max_depth`` levels."""
    inner = json_value(max_depth=max_depth)

    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise ShapeError(field, "must be an object")
        inner(value, field)
    return check
