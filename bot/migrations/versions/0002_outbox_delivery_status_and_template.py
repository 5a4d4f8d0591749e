"""outbox delivery status and template

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.create_index('ix_outbox_platform_message', ['channel', 'platform_message_id'], unique=False)
        batch_op.create_index('ix_outbox_template_sent', ['channel', 'template', 'sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_template_sent')
        batch_op.drop_index('ix_outbox_platform_message')
        batch_op.drop_column('template')
        batch_op.drop_column('delivery')

