"""applications

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('application',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reg_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('office', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('nik_hmac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('verify_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('verify_hmac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reminded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reg_no')
    )
    with op.batch_alter_table('application', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_nik_hmac'), ['nik_hmac'], unique=False)
        batch_op.create_index('ix_application_status_changed', ['status', 'status_changed_at'], unique=False)

    op.create_table('application_subscription',
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('stopped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
    sa.PrimaryKeyConstraint('application_id', 'contact_id')
    )
    with op.batch_alter_table('application_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_subscription_contact_id'), ['contact_id'], unique=False)

    op.create_table('application_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('status_before', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('status_after', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('application_update', schema=None) as batch_op:
        batch_op.create_index('ix_application_update_app', ['application_id', 'id'], unique=False)

    op.create_table('lookup_guard',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('window_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('lookups', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
    sa.PrimaryKeyConstraint('contact_id')
    )


def downgrade() -> None:
    op.drop_table('lookup_guard')
    with op.batch_alter_table('application_update', schema=None) as batch_op:
        batch_op.drop_index('ix_application_update_app')

    op.drop_table('application_update')
    with op.batch_alter_table('application_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_subscription_contact_id'))

    op.drop_table('application_subscription')
    with op.batch_alter_table('application', schema=None) as batch_op:
        batch_op.drop_index('ix_application_status_changed')
        batch_op.drop_index(batch_op.f('ix_application_nik_hmac'))

    op.drop_table('application')
