"""the inbox: every webhook stored before it is answered, drained by the worker

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('group_key', sa.Text(), nullable=False),
    sa.Column('lane', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('done_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_inbox_lane', 'inbox', ['status', 'lane', 'id'], unique=False)
    op.create_index('ix_inbox_ready', 'inbox', ['status', 'id'], unique=False)
    op.create_index('ix_inbox_done', 'inbox', ['status', 'done_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbox_done', table_name='inbox')
    op.drop_index('ix_inbox_ready', table_name='inbox')
    op.drop_index('ix_inbox_lane', table_name='inbox')
    op.drop_table('inbox')
