"""agency grants: a brand or creator authorises an agency to act for it

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agency_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grantor_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('grantor_role', sa.String(length=20), nullable=False),
    sa.Column('agency_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('granted_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grantor_id', 'agency_id')
    )
    with op.batch_alter_table('agency_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agency_grant_agency_id'), ['agency_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agency_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agency_grant_agency_id'))

    op.drop_table('agency_grant')
