"""Parties most API tests start from."""

from __future__ import annotations

import pytest


@pytest.fixture
async def trio(make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    stranger = await make_party("brand")
    return brand, creator, stranger
