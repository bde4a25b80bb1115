"""Campaign terms (SPEC §3): durations, revisions and rates pinned at creation."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MIN_DURATION = timedelta(seconds=1)  # SPEC: PT1S must work (tests and demos).
MAX_DURATION = timedelta(days=365)  # Guard against typos like P3000D pinning a campaign forever.

DURATION_FIELDS = (
    "acceptance_window",
    "funding_window",
    "review_window",
    "clearing_period",
    "cancellation_window",
    "review_period",
    "response_window",
    "negotiation_window",
    "mediation_window",
    "proposal_window",
    "arbitration_window",
)


class Terms(BaseModel):
    """Per-campaign terms. Durations parse from and serialise to ISO-8601 ("P3D", "PT1S")."""

    model_config = ConfigDict(extra="forbid")

    acceptance_window: timedelta = timedelta(days=3)
    funding_window: timedelta = timedelta(days=3)
    review_window: timedelta = timedelta(days=5)
    clearing_period: timedelta = timedelta(days=2)
    cancellation_window: timedelta = timedelta(days=2)
    review_period: timedelta = timedelta(days=14)
    response_window: timedelta = timedelta(days=5)
    negotiation_window: timedelta = timedelta(days=7)
    mediation_window: timedelta = timedelta(days=2)
    proposal_window: timedelta = timedelta(days=2)
    arbitration_window: timedelta = timedelta(days=5)
    max_revisions: int = Field(default=2, ge=0, le=100)
    platform_fee_bps: int = Field(default=1000, ge=0, le=10_000)
    agency_commission_bps: int = Field(default=0, ge=0, le=10_000)

    @field_validator(*DURATION_FIELDS)
    @classmethod
    def _duration_in_range(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        if not MIN_DURATION <= value <= MAX_DURATION:
            raise ValueError(
                f"{info.field_name} must be between PT1S and P365D, got {value.total_seconds()}s"
            )
        return value

    @model_validator(mode="after")
    def _rates_fit(self) -> Terms:
        if self.platform_fee_bps + self.agency_commission_bps > 10_000:
            raise ValueError("platform_fee_bps + agency_commission_bps must not exceed 10000")
        return self


def reminder_offset(window: timedelta) -> timedelta:
    """How long before a deadline its reminder fires (SPEC §3: "24 h before any deadline,
    or at half the window when shorter").

    Windows of 48 h or more get the reminder 24 h before the deadline. Shorter windows
    would put "24 h before" in the first half of the window (or before it even opened),
    so the reminder fires at the window's midpoint instead, i.e. `window / 2` before the
    deadline. Non-positive windows (nothing left to remind about) give zero.
    """
    if window >= timedelta(hours=48):
        return timedelta(hours=24)
    return max(window / 2, timedelta(0))
