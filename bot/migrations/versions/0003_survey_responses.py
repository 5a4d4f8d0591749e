"""survey responses

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submitted_on', sa.Date(), nullable=False),
    sa.Column('office', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('u1', sa.Integer(), nullable=False),
    sa.Column('u2', sa.Integer(), nullable=False),
    sa.Column('u3', sa.Integer(), nullable=False),
    sa.Column('u4', sa.Integer(), nullable=False),
    sa.Column('u5', sa.Integer(), nullable=False),
    sa.Column('u6', sa.Integer(), nullable=False),
    sa.Column('u7', sa.Integer(), nullable=False),
    sa.Column('u8', sa.Integer(), nullable=False),
    sa.Column('u9', sa.Integer(), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('suggestion', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.create_index('ix_survey_period', ['submitted_on', 'office'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_period')

    op.drop_table('survey_response')
