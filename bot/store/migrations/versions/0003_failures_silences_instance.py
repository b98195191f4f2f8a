"""pages that failed, card silences, truncated groups, incidents in threads, first ack, instance id

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_acknowledged_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('silenced_until', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('silenced_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('truncated_alerts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.execute('UPDATE incident SET first_acknowledged_at = acknowledged_at')
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failure', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    instance = op.create_table('instance',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(instance, [{'id': uuid.uuid4().hex, 'created_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('instance')
    with op.batch_alter_table('page', schema=None) as batch_op:
        batch_op.drop_column('failure')
        batch_op.drop_column('failed_at')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('thread_ts')
        batch_op.drop_column('truncated_alerts')
        batch_op.drop_column('silenced_by')
        batch_op.drop_column('silenced_until')
        batch_op.drop_column('first_acknowledged_at')
