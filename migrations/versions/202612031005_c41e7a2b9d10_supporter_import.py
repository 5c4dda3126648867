"""accounts, news, giving: what `flask supporters import` brings from another platform (issue
14): a supporter's note, labels and comped membership; where an imported consent came from
(file and line) and how it was confirmed; a plan cancelled but paid until a date

Revision ID: c41e7a2b9d10
Revises: 354b5332d877
Create Date: 2026-12-03 10:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c41e7a2b9d10'
down_revision = '354b5332d877'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('supporter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('labels', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('comped_until', sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('news_subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmation_source', sa.String(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column('consent_file', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('consent_line', sa.Integer(), nullable=True))
    with op.batch_alter_table('recurring_plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # ALTER TABLE ... DROP COLUMN in place: rebuilding these tables (batch's default on SQLite)
    # would drop a table that other tables' foreign keys name.
    with op.batch_alter_table('recurring_plan', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('ends_at')
    with op.batch_alter_table('news_subscriber', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('consent_line')
        batch_op.drop_column('consent_file')
        batch_op.drop_column('confirmation_source')
    with op.batch_alter_table('supporter', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('comped_until')
        batch_op.drop_column('labels')
        batch_op.drop_column('note')
