"""ledger: charge and payment intent ids, provider fee and net; plan cancel reason

Revision ID: 811960dac35e
Revises: 323799befed5
Create Date: 2026-11-25 08:48:31

"""
from alembic import op
import sqlalchemy as sa


revision = '811960dac35e'
down_revision = '323799befed5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('charge_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('payment_intent_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('fee', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('net', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payment_charge_id'), ['charge_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_payment_intent_id'), ['payment_intent_id'], unique=False)

    with op.batch_alter_table('recurring_plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_reason', sa.String(length=500), nullable=True))



def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('recurring_plan', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('cancel_reason')

    with op.batch_alter_table('payment', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_payment_intent_id'))
        batch_op.drop_index(batch_op.f('ix_payment_charge_id'))
        batch_op.drop_column('net')
        batch_op.drop_column('fee')
        batch_op.drop_column('payment_intent_id')
        batch_op.drop_column('charge_id')

