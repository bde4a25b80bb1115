"""idempotency claims carry a token for the Update id (issue #10 item 7)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('idempotency_record') as batch:
        batch.add_column(
            sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('idempotency_record') as batch:
        batch.drop_column('token')
