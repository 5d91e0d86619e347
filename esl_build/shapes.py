"""Structural checks of untrusted JSON-like data (manifests, config files), naming the field.

Manifests and configs arrive through pull requests, so they are checked before any code looks
inside them. A shape is a plain function ``check(value)`` that returns nothing or
raises ``ShapeError`` naming the dotted field that is wrong::

    RECORD = obj({"backend": text(), "cost": obj({"characters": integer(minimum=0)})})
    RECORD({"backend": "espeak", "cost": {"characters": "x"}})
    # ShapeError: cost.characters: must be an integer

Field names are put together only when something is wrong (each enclosing object adds its key
as the error passes through), so checking a good manifest builds no strings.

Hand-written rather than a JSON Schema validator: it costs a few dict lookups per field (a
no-op build may read every manifest), needs no run-time dependency, and its messages name
the field the way users see it. ``esl_build/schemas/manifest.schema.json`` says the same and
a test keeps the two in step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Shape = Callable[[Any], None]

MAX_DEPTH = 16  # deeper than anything esl-build writes; bounds recursion on hostile input


class ShapeError(ValueError):
    """The value at ``field`` (dotted, e.g. ``stages.tts.outputs``) is not what it must be."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self._keys: list[str] = []  # innermost first

    @property
    def field(self) -> str:
        return ".".join(reversed(self._keys))

    def inside(self, key: object) -> ShapeError:
        """This error, as seen from the object holding ``key``."""
        self._keys.append(str(key))
        return self

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self._keys else self.message


def obj(required: Mapping[str, Shape], optional: Mapping[str, Shape] | None = None, *,
        extra: Shape | None = None) -> Shape:
    """An object with these keys; other keys are refused unless ``extra`` checks them."""
    known = {**required, **(optional or {})}
    needed = frozenset(required)

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise ShapeError("must be an object")
        if not needed <= value.keys():
            missing = next(key for key in required if key not in value)
            raise ShapeError("is missing").inside(missing)
        for key, item in value.items():
            shape = known.get(key, extra)
            if shape is None:
                raise ShapeError("is not a known field").inside(key)
            try:
                shape(item)
            except ShapeError as error:
                raise error.inside(key) from None
    return check


def mapping(values: Shape, *, keys: str | None = None, what: str = "key") -> Shape:
    """An object whose every value has shape ``values`` (and key matches ``keys``, a regex)."""
    pattern = re.compile(keys) if keys else None

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise ShapeError("must be an object")
        for key, item in value.items():
            if pattern is not None and not pattern.fullmatch(key):
                raise ShapeError(f"is not a valid {what}").inside(key)
            try:
                values(item)
            except ShapeError as error:
                raise error.inside(key) from None
    return check


def text(*, pattern: str | None = None, min_length: int = 0, what: str = "") -> Shape:
    """A string (matching ``pattern`` if given; ``what`` names that form in messages)."""
    compiled = re.compile(pattern) if pattern else None
    form = what or f"of the form {pattern!r}"

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise ShapeError("must be a string")
        if len(value) < min_length:
            raise ShapeError("must not be empty")
        if compiled is not None and not compiled.fullmatch(value):
            raise ShapeError(f"must be {form}")
    return check


def integer(*, minimum: int | None = None) -> Shape:
    """An integer (not a boolean), at least ``minimum``."""
    def check(value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ShapeError("must be an integer")
        if minimum is not None and value < minimum:
            raise ShapeError(f"must be at least {minimum}")
    return check


def number(*, minimum: float | None = None) -> Shape:
    """A finite number (integer or float, not a boolean), at least ``minimum``."""
    def check(value: Any) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ShapeError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):  # json reads NaN, Infinity
            raise ShapeError("must be a finite number")
        if minimum is not None and value < minimum:
            raise ShapeError(f"must be at least {minimum}")
    return check


def boolean(value: Any) -> None:
    """true or false."""
    if not isinstance(value, bool):
        raise ShapeError("must be true or false")


def const(expected: Any) -> Shape:
    """Exactly ``expected``."""
    def check(value: Any) -> None:
        if value != expected or type(value) is not type(expected):
            raise ShapeError(f"must be {expected!r}")
    return check


def nullable(shape: Shape) -> Shape:
    """null, or ``shape``."""
    def check(value: Any) -> None:
        if value is not None:
            shape(value)
    return check


def either(*shapes: Shape, message: str) -> Shape:
    """The first of ``shapes`` that fits; ``message`` when none does."""
    def check(value: Any) -> None:
        for shape in shapes:
            try:
                shape(value)
                return
            except ShapeError:
                continue
        raise ShapeError(message)
    return check


def json_value(*, max_depth: int = MAX_DEPTH) -> Shape:
    """Any JSON value nested at most ``max_depth`` levels (objects and arrays)."""
    def walk(value: Any, depth: int) -> None:
        if depth >= max_depth:
            raise ShapeError(f"is nested more than {max_depth} levels deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, dict | list):
                try:
                    walk(item, depth + 1)
                except ShapeError as error:
                    raise error.inside(key) from None

    def check(value: Any) -> None:
        if isinstance(value, dict | list):
            walk(value, 0)
    return check


def json_object(*, max_depth: int = MAX_DEPTH) -> Shape:
    """A JSON object nested at most ``max_depth`` levels."""
    inner = json_value(max_depth=max_depth)

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise ShapeError("must be an object")
        inner(value)
    return check
