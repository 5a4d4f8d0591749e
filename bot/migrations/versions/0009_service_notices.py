"""service notices: disruptions staff announce to citizens who ask about a service

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('text_id', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('text_en', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('starts_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ends_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_notice', schema=None) as batch_op:
        batch_op.create_index('ix_service_notice_ends', ['ends_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('service_notice', schema=None) as batch_op:
        batch_op.drop_index('ix_service_notice_ends')
    op.drop_table('service_notice')
