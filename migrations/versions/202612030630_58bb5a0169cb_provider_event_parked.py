"""payments: webhook events about sales that are not ours, and ours parked after waiting too
long for another event (issue 16 item 4)

Revision ID: 58bb5a0169cb
Revises: 7d2b91e4c6a0
Create Date: 2026-12-03 06:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '58bb5a0169cb'
down_revision = '7d2b91e4c6a0'
branch_labels = None
depends_on = None


def upgrade():
    # Events stored before this revision were ours or noted as ignored; none was parked (an
    # early one was answered 409 and never stored).
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_ours', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('parked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_provider_event_parked_at'), ['parked_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_event_parked_at'))
        batch_op.drop_column('parked_at')
        batch_op.drop_column('not_ours')
