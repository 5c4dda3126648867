"""mail: a message claimed by the sender handing it to the mail server, so that no database lock
is held while it does (app.mail._claim)

Revision ID: 854c27d36b03
Revises: 44e52655bad6
Create Date: 2026-12-03 16:03:38

"""
from alembic import op
import sqlalchemy as sa


revision = '854c27d36b03'
down_revision = '44e52655bad6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.drop_column('claimed_at')
