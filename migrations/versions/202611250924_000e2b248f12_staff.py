"""staff: roles, paused campaigns

Revision ID: 000e2b248f12
Revises: 7467cbb484c4
Create Date: 2026-11-25 09:24:36

"""
from alembic import op
import sqlalchemy as sa


revision = '000e2b248f12'
down_revision = '7467cbb484c4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_role',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('fundraiser', 'finance', 'admin', name='role', native_enum=False, length=20), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['granted_by_id'], ['supporter.id'], name=op.f('fk_staff_role_granted_by_id_supporter'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_staff_role_supporter_id_supporter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_role')),
    sa.UniqueConstraint('supporter_id', 'role', name=op.f('uq_staff_role_supporter_id_role'))
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    # SQLite (3.35+) drops a column in place; recreating the table would trip the foreign
    # keys that point at it (and cascade deletes along them).
    with op.batch_alter_table('campaign', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('paused_at')

    op.drop_table('staff_role')
