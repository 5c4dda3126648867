"""jobs: the slots of the periodic tasks the scheduler claimed, one claim each however many
schedulers run (issue 12)

Revision ID: 3846d5cfc3d4
Revises: 3a34a6d2aceb
Create Date: 2026-12-03 06:30:54

"""
from alembic import op
import sqlalchemy as sa


revision = '3846d5cfc3d4'
down_revision = '3a34a6d2aceb'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scheduled_run',
    sa.Column('task', sa.String(length=40), nullable=False),
    sa.Column('slot', sa.String(length=40), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('task', 'slot', name=op.f('pk_scheduled_run'))
    )


def downgrade():
    op.drop_table('scheduled_run')
