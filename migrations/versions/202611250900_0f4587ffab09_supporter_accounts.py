"""supporter accounts: password, verified and pending email, postal address, erasure; used links

Revision ID: 0f4587ffab09
Revises: 845f6f917469
Create Date: 2026-11-25 09:00:32

"""
from alembic import op
import sqlalchemy as sa


revision = '0f4587ffab09'
down_revision = '845f6f917469'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('used_account_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('jti', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_used_account_link_supporter_id_supporter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_used_account_link')),
    sa.UniqueConstraint('jti', name=op.f('uq_used_account_link_jti'))
    )
    with op.batch_alter_table('used_account_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_account_link_supporter_id'), ['supporter_id'], unique=False)

    with op.batch_alter_table('supporter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pending_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('address_line1', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('address_line2', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('city', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('region', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('postal_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('supporter', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('country')
        batch_op.drop_column('postal_code')
        batch_op.drop_column('region')
        batch_op.drop_column('city')
        batch_op.drop_column('address_line2')
        batch_op.drop_column('address_line1')
        batch_op.drop_column('last_login_at')
        batch_op.drop_column('session_version')
        batch_op.drop_column('pending_email')
        batch_op.drop_column('email_verified_at')
        batch_op.drop_column('password_hash')

    with op.batch_alter_table('used_account_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_account_link_supporter_id'))

    op.drop_table('used_account_link')
