"""Custom search attributes (SPEC §5): how mediators find workflows in the Temporal UI."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("ParleyStage")
MEDIATOR = SearchAttributeKey.for_keyword("ParleyMediator")
CAMPAIGN = SearchAttributeKey.for_keyword("ParleyCampaign")
DEADLINE = SearchAttributeKey.for_datetime("ParleyDeadline")
AMOUNT = SearchAttributeKey.for_int("ParleyAmount")

ALL = (STAGE, MEDIATOR, CAMPAIGN, DEADLINE, AMOUNT)


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int"}
    return [
        flag
        for key in ALL
        for flag in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")
    ]
