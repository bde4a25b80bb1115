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

from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from domain.terms import MAX_DURATION, MIN_DURATION

MAX_OBJECTIVES = 6
MAX_TARGET = 10**12  # far above any post's reach; keeps the arithmetic and the JSON small
DEFAULT_CURE_WINDOW = timedelta(days=3)  # SPEC §9


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
    # How long a creator has to restore a post taken down during `live_for` (SPEC §9 puts it
    # in the campaign's terms; it lives here so contracts without proof hash as before).
    cure_window: timedelta = DEFAULT_CURE_WINDOW

    @field_validator("live_for")
    @classmethod
    def _live_for(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _in_range("live_for", value)

    @field_validator("cure_window")
    @classmethod
    def _cure_window(cls, value: timedelta) -> timedelta:
        return _in_range("cure_window", value)

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
            "cure_window": int(self.cure_window.total_seconds()),
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


def figures_of(raw: dict[str, Any]) -> dict[Metric, int]:
    """The contracted metrics among `raw` (a provider's or an integration's counts), each a
    non-negative integer below MAX_TARGET: anything else is dropped, so what the workflow
    keeps is bounded by the Metric names."""
    known = {m.value: m for m in Metric}
    return {
        known[name]: min(value, MAX_TARGET)
        for name, value in raw.items()
        if name in known and type(value) is int and value >= 0
    }


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


# --- tracking (issue #15): what the campaign workflow keeps while a post is watched ---------

SOURCES = ("link", "http", "integration")
# How many snapshot ids and digests a platform-filed dispute names as evidence.
MAX_EVIDENCE_SNAPSHOTS = 50
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Observation(BaseModel):
    """One stored snapshot as the workflow hears of it: the figures (contracted metrics
    only), whether the post answered, and the snapshot's id and sha256 in the database —
    never the payload itself."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    snapshot_id: int = Field(ge=1)
    source: Literal["link", "http", "integration"]
    taken_at: datetime
    reachable: bool
    figures: dict[Metric, Annotated[int, Field(ge=0, le=MAX_TARGET)]] = Field(
        default_factory=dict, max_length=len(Metric)
    )
    sha256: Sha256


class ObservePost(BaseModel):
    """The provider activity's input: which post to look at, and what to read from it."""

    campaign_id: str
    index: int
    url: str
    metrics: list[Metric] = Field(default_factory=list, max_length=len(Metric))


class SnapshotRef(BaseModel):
    id: int
    sha256: Sha256


class TakedownEvidence(BaseModel):
    """What a platform-filed dispute carries: the stored record of the deliverable's
    snapshots (as evidence text, by sha256) and the latest ids and digests."""

    sha256: Sha256
    description: str = Field(max_length=2000)
    snapshots: list[SnapshotRef] = Field(default_factory=list, max_length=MAX_EVIDENCE_SNAPSHOTS)


class ObjectiveProgress(BaseModel):
    metric: Metric
    target: int
    due_at: datetime  # the submission + `within`: the figure is taken then
    achieved: int = 0
    met: bool = False
    evaluated: bool = False  # `achieved` is final


class ProofTracking(BaseModel):
    """A deliverable approved under proof terms, until it is released (bounded: the latest
    figures and digest only; every snapshot is in the database)."""

    started_at: datetime  # approval
    live_until: datetime | None = None  # approval + live_for (+ the time it was down)
    poll_every: timedelta
    next_poll_at: datetime
    progress: list[ObjectiveProgress] = Field(default_factory=list, max_length=MAX_OBJECTIVES)
    figures: dict[Metric, int] = Field(default_factory=dict, max_length=len(Metric))
    reachable: bool = True
    snapshot_id: int | None = None
    sha256: str | None = None
    observed_at: datetime | None = None
    polls: int = 0
    down_since: datetime | None = None
    cure_by: datetime | None = None
    takedown_disputed: bool = False
    # Once decided: what the creator side earned and the brand gets back.
    release: int | None = None
    refund: int | None = None

    def decide_at(self, clears_at: datetime | None) -> datetime:
        """When the release is decided: live_for served, every objective's window closed,
        and the clearing period over (a dispute may be filed until then)."""
        times = [self.started_at, *(p.due_at for p in self.progress)]
        times += [t for t in (self.live_until, clears_at) if t]
        return max(times)

    def deadline(self, clears_at: datetime | None) -> datetime:
        """The deadline the campaign shows: a cure window while the post is down."""
        return self.cure_by or self.decide_at(clears_at)

    def next_wake(self, clears_at: datetime | None) -> datetime | None:
        if self.release is not None:
            return None  # decided; only a blocked payout waits, for its retry
        due = [p.due_at for p in self.progress if not p.evaluated]
        return min([self.next_poll_at, self.deadline(clears_at), *due])

    def achieved(self) -> dict[Metric, int]:
        return {p.metric: p.achieved for p in self.progress}

    def observe(self, seen: Observation, now: datetime, cure_window: timedelta) -> list[str]:
        """Takes in a snapshot; answers what matters in it (a takedown, a restore, a target
        met, a quarter of a target passed) — the rest only updates the latest figures."""
        events: list[str] = []
        self.snapshot_id, self.sha256, self.observed_at = seen.snapshot_id, seen.sha256, now
        if seen.reachable:
            self.figures = dict(seen.figures)
            for p in self.progress:
                if p.evaluated or p.metric not in seen.figures:
                    continue
                before, p.achieved = p.achieved, seen.figures[p.metric]
                if not p.met and p.achieved >= p.target:
                    p.met = True
                    events.append(f"target_met:{p.metric.value}")
                elif _quarter(before, p.target) != _quarter(p.achieved, p.target):
                    events.append(f"progress:{p.metric.value}")
            if self.down_since is not None:
                # Restored within the cure window: the time it was down does not count
                # towards `live_for`.
                if self.live_until:
                    self.live_until += now - self.down_since
                self.down_since = self.cure_by = None
                events.append("restored")
        elif (
            self.down_since is None
            and not self.takedown_disputed
            and self.live_until is not None
            and now < self.live_until
        ):
            self.down_since, self.cure_by = now, now + cure_window
            events.append("taken_down")
        self.reachable = seen.reachable
        return events

    def evaluate_due(self, now: datetime) -> list[ObjectiveProgress]:
        """Objectives whose window closed: their figure is final."""
        due = [p for p in self.progress if not p.evaluated and p.due_at <= now]
        for p in due:
            p.evaluated = True
        return due


def _quarter(achieved: int, target: int) -> int:
    return min(achieved, target) * 4 // target


def start_tracking(
    proof: ProofTerms, submitted_at: datetime, now: datetime, poll_every: timedelta
) -> ProofTracking:
    return ProofTracking(
        started_at=now,
        live_until=now + proof.live_for if proof.live_for else None,
        poll_every=poll_every,
        next_poll_at=now,  # a first look right away
        progress=[
            ObjectiveProgress(metric=o.metric, target=o.target, due_at=submitted_at + o.within)
            for o in proof.objectives
        ],
    )
