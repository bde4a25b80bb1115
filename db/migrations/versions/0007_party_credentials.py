"""party credentials (key rotation with a grace period, deactivation), the Location of an
idempotent replay and sealed replay bodies, and timeline notifications on PostgreSQL
(issue #14, issue #15)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# api/message_bus.py TIMELINE: every process LISTENs on it. A trigger, so each writer of the
# timeline (the worker's activities, in any process) announces in the inserting transaction:
# the notification is delivered at commit, never for a rolled-back row.
TIMELINE_CHANNEL = 'parley_timeline'


def upgrade() -> None:
    with op.batch_alter_table('party') as batch:
        batch.add_column(
            sa.Column(
                'previous_api_key_hash',
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=True,
            )
        )
        batch.add_column(
            sa.Column('previous_api_key_expires_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index(
            batch.f('ix_party_previous_api_key_hash'), ['previous_api_key_hash'], unique=False
        )
    with op.batch_alter_table('idempotency_record') as batch:
        batch.add_column(
            sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True)
        )
        batch.add_column(
            sa.Column('sealed', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION parley_timeline_notify() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('{TIMELINE_CHANNEL}', NEW.campaign_id);
                RETURN NEW;
            END
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER timeline_event_notify AFTER INSERT ON timeline_event
            FOR EACH ROW EXECUTE FUNCTION parley_timeline_notify()
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS timeline_event_notify ON timeline_event')
        op.execute('DROP FUNCTION IF EXISTS parley_timeline_notify()')
    with op.batch_alter_table('idempotency_record') as batch:
        batch.drop_column('sealed')
        batch.drop_column('location')
    with op.batch_alter_table('party') as batch:
        batch.drop_index(batch.f('ix_party_previous_api_key_hash'))
        batch.drop_column('deactivated_at')
        batch.drop_column('previous_api_key_expires_at')
        batch.drop_column('previous_api_key_hash')
