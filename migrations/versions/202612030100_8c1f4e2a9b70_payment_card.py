"""payments: the card a charge was paid with (brand and last four digits, for the receipt)

Revision ID: 8c1f4e2a9b70
Revises: 5b7e2c9d41a3
Create Date: 2026-12-03 01:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '8c1f4e2a9b70'
down_revision = '5b7e2c9d41a3'
branch_labels = None
depends_on = None


def upgrade():
    # Charges recorded before this revision keep no card: their receipts name none.
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_brand', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('card_last4', sa.String(length=4), nullable=True))


def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('payment', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('card_last4')
        batch_op.drop_column('card_brand')
