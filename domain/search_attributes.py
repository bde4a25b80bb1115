"""Custom search attributes (SPEC §5): how mediators find workflows in the Temporal UI."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("ParleyStage")
MEDIATOR = SearchAttributeKey.for_keyword("ParleyMediator")
CAMPAIGN = SearchAttributeKey.for_keyword("ParleyCampaign")
DEADLINE = SearchAttributeKey.for_datetime("ParleyDeadline")
AMOUNT = SearchAttributeKey.for_int("ParleyAmount")
# A dispute whose stage deadline passed without the awaited action (the mediator's, since the
# other stages' deadlines act on their own): true until the case moves on (issue #12).
OVERDUE = SearchAttributeKey.for_bool("ParleyOverdue")

ALL = (STAGE, MEDIATOR, CAMPAIGN, DEADLINE, AMOUNT, OVERDUE)


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int", "BOOL": "Bool"}
    return [
        flag
        for key in ALL
        for flag in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")
    ]
