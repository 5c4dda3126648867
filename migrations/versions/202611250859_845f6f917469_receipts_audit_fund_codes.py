"""receipts, receipt counter, audit log, campaign fund code

Revision ID: 845f6f917469
Revises: 811960dac35e
Create Date: 2026-11-25 08:59:20

"""
from alembic import op
import sqlalchemy as sa


revision = '845f6f917469'
down_revision = '811960dac35e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('receipt_counter',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_receipt_counter'))
    )
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=80), nullable=False),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('after', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['supporter.id'], name=op.f('fk_audit_entry_actor_id_supporter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_entry_target', ['target_type', 'target_id'], unique=False)

    op.create_table('receipt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gift_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('issued', 'void', name='receiptstatus', native_enum=False, length=20), nullable=False),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('void_reason', sa.String(length=300), nullable=True),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_receipt_amount_positive')),
    sa.CheckConstraint('sequence > 0', name=op.f('ck_receipt_sequence_positive')),
    sa.ForeignKeyConstraint(['gift_id'], ['gift.id'], name=op.f('fk_receipt_gift_id_gift')),
    sa.ForeignKeyConstraint(['replaces_id'], ['receipt.id'], name=op.f('fk_receipt_replaces_id_receipt')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt')),
    sa.UniqueConstraint('number', name=op.f('uq_receipt_number')),
    sa.UniqueConstraint('year', 'sequence', name=op.f('uq_receipt_year_sequence'))
    )
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_gift_id'), ['gift_id'], unique=False)

    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fund_code', sa.String(length=40), nullable=True))



def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('campaign', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('fund_code')

    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_gift_id'))

    op.drop_table('receipt')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_target')
        batch_op.drop_index(batch_op.f('ix_audit_entry_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_actor_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_action'))

    op.drop_table('audit_entry')
    op.drop_table('receipt_counter')
