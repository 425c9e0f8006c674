"""Field validators shared by the placement models."""

from __future__ import annotations

from django.core.exceptions import ValidationError


def validate_positive(value: float) -> None:
    """Reject zero and negative numbers (bandwidths, clocks, speeds)."""
    if value is None:
        return
    if value <= 0:
        raise ValidationError("Must be greater than 0.", code="not_positive", params={"value": value})


def validate_non_negative(value: float) -> None:
    """Reject negative numbers (counts, sizes, delays)."""
    if value is None:
        return
    if value < 0:
        raise ValidationError("Must not be negative.", code="negative", params={"value": value})
