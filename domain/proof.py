"""Contracted proof of performance (issue #15): how long a post must stay live, the figures it
must reach, and what the deliverable's amount earns from the result.

Pure and deterministic (safe inside workflows). The money rule: a deliverable's `amount`
splits exactly into what is earned (released to the creator side, fee and agency commission
then taken as SPEC §2) and the rest (refunded to the brand):

- no objectives: the whole amount is earned (approval alone, as before);
- `all_or_nothing`: the whole amount when every objective met its target within its window,
  else nothing;
- `pro_rata`: `floor_bps` of the amount whatever the figures, plus the rest in proportion to
  attainment — the mean over objectives of `min(achieved, target) / target` — rounded down
  to the minor unit (so the brand, not the creator, gets the rounding remainder).

Weak reach is a failure only where the contract made it one: no objective, no shortfall.
A takedown is not a money rule here: it pauses the release and may become a dispute.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from domain.terms import MAX_DURATION, MIN_DURATION

MAX_OBJECTIVES = 6
MAX_TARGET = 10**12  # far above any post's reach; keeps the arithmetic and the JSON small


class Metric(StrEnum):
    VIEWS = "views"
    LIKES = "likes"
    COMMENTS = "comments"
    SHARES = "shares"
    CLICKS = "clicks"
    CONVERSIONS = "conversions"


class Objective(BaseModel):
    """Reach `target` of `metric` within `within` of the (latest) submission."""

    model_config = ConfigDict(extra="forbid")

    metric: Metric
    target: StrictInt = Field(ge=1, le=MAX_TARGET)
    within: timedelta

    @field_validator("within")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        return _in_range("within", value)


class PayoutRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["all_or_nothing", "pro_rata"] = "all_or_nothing"
    floor_bps: StrictInt = Field(default=0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _floor_only_pro_rata(self) -> PayoutRule:
        if self.kind == "all_or_nothing" and self.floor_bps:
            raise ValueError("floor_bps applies to the pro_rata rule only")
        return self


class ProofTerms(BaseModel):
    """Per deliverable, optional; part of the contract (and so of its hash)."""

    model_config = ConfigDict(extra="forbid")

    live_for: timedelta | None = None  # the post stays reachable this long after approval
    objectives: list[Objective] = Field(default_factory=list, max_length=MAX_OBJECTIVES)
    payout_rule: PayoutRule = Field(default_factory=PayoutRule)

    @field_validator("live_for")
    @classmethod
    def _live_for(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _in_range("live_for", value)

    @field_validator("objectives")
    @classmethod
    def _one_objective_per_metric(cls, value: list[Objective]) -> list[Objective]:
        metrics = [o.metric for o in value]
        if len(set(metrics)) != len(metrics):
            raise ValueError("at most one objective per metric")
        return value

    @property
    def tracked(self) -> bool:
        """Anything to watch after approval: a live period or figures to reach."""
        return self.live_for is not None or bool(self.objectives)

    def contract_view(self) -> dict[str, Any]:
        """What the contract hash pins (canonical: durations in seconds, sorted metrics)."""
        return {
            "live_for": int(self.live_for.total_seconds()) if self.live_for else None,
            "objectives": [
                {
                    "metric": o.metric.value,
                    "target": o.target,
                    "within": int(o.within.total_seconds()),
                }
                for o in sorted(self.objectives, key=lambda o: o.metric.value)
            ],
            "payout_rule": self.payout_rule.model_dump(),
        }


def _in_range(name: str, value: timedelta) -> timedelta:
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise ValueError(f"{name} must be between PT1S and P365D")
    return value


def attainment(objectives: list[Objective], achieved: dict[Metric, int]) -> Fraction:
    """The mean over objectives of `min(achieved, target) / target`, exactly; 1 without
    objectives. A metric with no figure counts as 0."""
    if not objectives:
        return Fraction(1)
    parts = [
        Fraction(min(max(achieved.get(o.metric, 0), 0), o.target), o.target) for o in objectives
    ]
    return sum(parts, Fraction(0)) / len(parts)


def all_met(objectives: list[Objective], achieved: dict[Metric, int]) -> bool:
    return all(achieved.get(o.metric, 0) >= o.target for o in objectives)


def earned(amount: int, proof: ProofTerms, achieved: dict[Metric, int]) -> tuple[int, int]:
    """(earned by the creator side, refunded to the brand): exactly `amount` together."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    rule = proof.payout_rule
    if not proof.objectives:
        release = amount
    elif rule.kind == "all_or_nothing":
        release = amount if all_met(proof.objectives, achieved) else 0
    else:
        floor = amount * rule.floor_bps // 10_000
        share = (amount - floor) * attainment(proof.objectives, achieved)
        release = floor + share.numerator // share.denominator
    return release, amount - release
