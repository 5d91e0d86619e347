"""One row of ``python -m bench``: a figure, its reference from the same run, and its target."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """``value`` beside ``reference`` (same unit); ``target`` says what passes, ``ok`` whether
    it did (None: no target, or nothing measured)."""

    suite: str
    figure: str
    value: float | None
    reference: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    reference_label: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference:
            return None
        return self.value / self.reference

    def cells(self) -> tuple[str, ...]:
        def show(number: float | None) -> str:
            if number is None:
                return "-"
            text = f"{number:,.0f}" if abs(number) >= 100 or number == int(number) \
                else f"{number:.3g}"
            return f"{text} {self.unit}".strip()

        reference = show(self.reference)
        if self.reference_label and self.reference is not None:
            reference += f" ({self.reference_label})"
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        verdict = {True: "yes", False: "NO", None: ""}[self.ok]
        return (self.suite, self.figure, show(self.value), reference, ratio, self.target,
                verdict)

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "figure": self.figure, "value": self.value,
                "reference": self.reference, "referenceLabel": self.reference_label,
                "unit": self.unit, "ratio": self.ratio, "target": self.target, "ok": self.ok}


def at_most(value: float | None, bound: float) -> bool | None:
    """Whether ``value`` is within ``bound`` (None when nothing was measured)."""
    return None if value is None else value <= bound


def ratio_row(suite: str, figure: str, value: float, reference: float, unit: str, *,
              max_ratio: float, reference_label: str = "") -> Row:
    """A row that passes when ``value / reference`` is at most ``max_ratio``."""
    ratio = value / reference if reference else None
    return Row(suite, figure, value, reference, unit, f"≤ {max_ratio:g}x",
               at_most(ratio, max_ratio), reference_label)


Measure = Callable[[bool], list[Row]]
