"""news: stories the feed marks as analysis (the daily email's section for Sustainers)

Revision ID: 5b7e2c9d41a3
Revises: fd3be956c4c3
Create Date: 2026-12-02 20:15:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5b7e2c9d41a3'
down_revision = 'fd3be956c4c3'
branch_labels = None
depends_on = None


def upgrade():
    # Stories stored before this revision are news, not analysis: a re-ingest does not change
    # a stored story's marks (only its title and summary).
    with op.batch_alter_table('news_article', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_analysis', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('news_article', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('is_analysis')
