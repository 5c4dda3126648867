"""mail: which process claimed a message, so that a sender on the same machine takes over at
once from one that died (app.mail._claim)

Revision ID: e862352bbef7
Revises: 854c27d36b03
Create Date: 2026-12-03 17:34:08

"""
from alembic import op
import sqlalchemy as sa


revision = 'e862352bbef7'
down_revision = '854c27d36b03'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
