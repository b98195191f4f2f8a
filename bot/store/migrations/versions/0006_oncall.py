"""on-call from Slack: overrides, swap requests, and the audit of on-call changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oncall_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rotation', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('layer', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_oncall_audit_at'), 'oncall_audit', ['at'], unique=False)
    op.create_index(op.f('ix_oncall_audit_rotation'), 'oncall_audit', ['rotation'], unique=False)
    op.create_table('oncall_override',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rotation', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('layer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('who', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('starts_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('swap_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_oncall_override_rotation_end', 'oncall_override', ['rotation', 'ends_at'], unique=False)
    op.create_table('swap_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rotation', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('layer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('requester', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('starts_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('message_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('taken_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('taken_by_user', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('taken_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('swap_request')
    op.drop_index('ix_oncall_override_rotation_end', table_name='oncall_override')
    op.drop_table('oncall_override')
    op.drop_index(op.f('ix_oncall_audit_rotation'), table_name='oncall_audit')
    op.drop_index(op.f('ix_oncall_audit_at'), table_name='oncall_audit')
    op.drop_table('oncall_audit')
