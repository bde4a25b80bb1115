"""reconciliation reports (issue #10)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconciliation_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaigns_checked', sa.Integer(), nullable=False),
    sa.Column('legs_checked', sa.Integer(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('reconciliation_report')
