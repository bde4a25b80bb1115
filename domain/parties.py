"""Who takes part in a campaign."""

from enum import StrEnum


class Role(StrEnum):
    BRAND = "brand"
    CREATOR = "creator"
    AGENCY = "agency"
    MEDIATOR = "mediator"
