"""payments: payouts and the balance transactions each paid out

Revision ID: fd3be956c4c3
Revises: f6950c136c95
Create Date: 2026-11-25 11:44:53

"""
from alembic import op
import sqlalchemy as sa


revision = 'fd3be956c4c3'
down_revision = 'f6950c136c95'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_id', sa.String(length=255), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('arrival_date', sa.Date(), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reconciliation_status', sa.String(length=20), nullable=True),
    sa.Column('failure_message', sa.String(length=500), nullable=True),
    sa.Column('transactions_fetched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transaction_count', sa.Integer(), nullable=True),
    sa.Column('fee_total', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout')),
    sa.UniqueConstraint('provider', 'provider_id', name=op.f('uq_payout_provider_provider_id'))
    )
    with op.batch_alter_table('payout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_arrival_date'), ['arrival_date'], unique=False)

    op.create_table('payout_transaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('transaction_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=True),
    sa.Column('ledger_kind', sa.Enum('charge', 'refund', 'dispute', 'dispute_won', name='paymentkind', native_enum=False, length=20), nullable=True),
    sa.Column('ledger_ref', sa.String(length=255), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('fee', sa.Integer(), nullable=False),
    sa.Column('net', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['payout_id'], ['payout.id'], name=op.f('fk_payout_transaction_payout_id_payout'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_transaction')),
    sa.UniqueConstraint('provider', 'transaction_id', name=op.f('uq_payout_transaction_provider_transaction_id'))
    )
    with op.batch_alter_table('payout_transaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_transaction_payout_id'), ['payout_id'], unique=False)



def downgrade():
    with op.batch_alter_table('payout_transaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_transaction_payout_id'))

    op.drop_table('payout_transaction')
    with op.batch_alter_table('payout', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_arrival_date'))

    op.drop_table('payout')
