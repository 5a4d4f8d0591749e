"""indexes: the outbox sender's claim order, applications by last change

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_claim', 'outbox', ['channel', 'status', 'priority', 'id'],
                    unique=False)
    op.create_index('ix_application_changed', 'application', ['status_changed_at', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_application_changed', table_name='application')
    op.drop_index('ix_outbox_claim', table_name='outbox')
