"""payments: attempts to apply a stored webhook event, and the error the last one raised, for
the operations inbox (issue 16)

Revision ID: 3a34a6d2aceb
Revises: 58bb5a0169cb
Create Date: 2026-12-03 06:31:00

"""
from alembic import op
import sqlalchemy as sa


revision = '3a34a6d2aceb'
down_revision = '58bb5a0169cb'
branch_labels = None
depends_on = None


def upgrade():
    # Events stored before this revision: no attempt counted, no error kept.
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
