"""money columns as 64-bit integers: amounts reach MAX_AMOUNT (10^12 minor units), beyond
PostgreSQL's 32-bit INTEGER (found by schemathesis: a budget of 67,283,700,954 could not be
booked, so funding retried until its deadline). SQLite's INTEGER is 64-bit already.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

MONEY = {
    'ledger_entry': ('amount', 'platform_fee', 'agency_commission'),
    'sandbox_movement': ('amount',),
}


def upgrade() -> None:
    for table, columns in MONEY.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    for table, columns in MONEY.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.Integer(), existing_type=sa.BigInteger())
