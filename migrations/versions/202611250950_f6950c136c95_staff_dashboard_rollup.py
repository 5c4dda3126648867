"""staff: dashboard snapshots (the rollup) and the ledger index they read after

Revision ID: f6950c136c95
Revises: 000e2b248f12
Create Date: 2026-11-25 09:50:19

"""
from alembic import op
import sqlalchemy as sa


revision = 'f6950c136c95'
down_revision = '000e2b248f12'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dashboard_snapshot',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payment_mark', sa.Integer(), nullable=False),
    sa.Column('audit_mark', sa.Integer(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_dashboard_snapshot_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_dashboard_snapshot'))
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index('ix_payment_campaign_id_id', ['campaign_id', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_campaign_id_id')

    op.drop_table('dashboard_snapshot')
