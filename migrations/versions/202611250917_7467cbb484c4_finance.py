"""finance: goods or services received for a gift (receipts), ledger by time (exports)

Revision ID: 7467cbb484c4
Revises: cc7df1597076
Create Date: 2026-11-25 09:17:49

"""
from alembic import op
import sqlalchemy as sa


revision = '7467cbb484c4'
down_revision = 'cc7df1597076'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('gift', schema=None) as batch_op:
        batch_op.add_column(sa.Column('goods_value', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('goods_description', sa.String(length=200), nullable=True))

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_occurred_at'), ['occurred_at'], unique=False)


def downgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_occurred_at'))

    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it.
    with op.batch_alter_table('gift', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('goods_description')
        batch_op.drop_column('goods_value')
