"""accounts: the newest link of each purpose sent to a supporter, the only one that works
(issue 11 item 3)

Revision ID: 7d2b91e4c6a0
Revises: 498abd0d6bcb
Create Date: 2026-12-03 05:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7d2b91e4c6a0'
down_revision = '498abd0d6bcb'
branch_labels = None
depends_on = None


def upgrade():
    # Links mailed before this revision carry no account state and no row here: they answer
    # "stale", and their owners ask for a new one.
    op.create_table('latest_account_link',
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('jti', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_latest_account_link_supporter_id_supporter')),
    sa.PrimaryKeyConstraint('supporter_id', 'purpose', name=op.f('pk_latest_account_link'))
    )


def downgrade():
    op.drop_table('latest_account_link')
