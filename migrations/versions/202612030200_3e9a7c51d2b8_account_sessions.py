"""accounts: a row per sign-in, so that signing out ends it on the server (issue 11 item 2)

Revision ID: 3e9a7c51d2b8
Revises: 8c1f4e2a9b70
Create Date: 2026-12-03 02:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '3e9a7c51d2b8'
down_revision = '8c1f4e2a9b70'
branch_labels = None
depends_on = None


def upgrade():
    # Cookies issued before this revision name "<id>:<session_version>", which matches no row
    # here: everyone is signed out once, and signs in again.
    op.create_table('account_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_account_session_supporter_id_supporter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_session')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_account_session_key_hash'))
    )
    with op.batch_alter_table('account_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_session_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_session_supporter_id'), ['supporter_id'], unique=False)


def downgrade():
    with op.batch_alter_table('account_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_session_supporter_id'))
        batch_op.drop_index(batch_op.f('ix_account_session_created_at'))

    op.drop_table('account_session')
