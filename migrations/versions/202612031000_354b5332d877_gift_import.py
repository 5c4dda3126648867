"""campaigns, finance: what `flask finance import` brings from another platform (issue 14): a
campaign it created (ended, unpublished), and receipts that platform issued, which keep its
numbers and were neither made nor mailed here

Revision ID: 354b5332d877
Revises: a979500d222d
Create Date: 2026-12-03 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '354b5332d877'
down_revision = 'a979500d222d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('imported_at', sa.DateTime(timezone=True), nullable=True))
    # Receipts made before this revision were all issued here.
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issued_elsewhere', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('receipt', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('issued_elsewhere')
    with op.batch_alter_table('campaign', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('imported_at')
