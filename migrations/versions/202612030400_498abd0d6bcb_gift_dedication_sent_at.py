"""giving: when a gift's dedication note was queued, claimed once per gift

Revision ID: 498abd0d6bcb
Revises: 656dec34a38f
Create Date: 2026-12-03 04:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '498abd0d6bcb'
down_revision = '656dec34a38f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('gift', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedication_sent_at', sa.DateTime(timezone=True),
                                      nullable=True))
    # Notes sent before this revision: when they were queued (the outbox keeps each under the
    # key dedication:<gift id>).
    op.execute("UPDATE gift SET dedication_sent_at = (SELECT created_at FROM outbound_email "
               "WHERE dedupe_key = 'dedication:' || CAST(gift.id AS VARCHAR(20))) "
               "WHERE dedication_email IS NOT NULL")


def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it.
    with op.batch_alter_table('gift', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('dedication_sent_at')
