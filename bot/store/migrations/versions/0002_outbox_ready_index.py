"""outbox: index the claim order (status, priority, id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_ready', 'outbox', ['status', 'priority', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_ready', table_name='outbox')
