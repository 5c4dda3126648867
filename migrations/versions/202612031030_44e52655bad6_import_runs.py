"""imports: an import started from the staff pages, its state and reports, and its uploaded
file in pieces until it is done (issue 14)

Revision ID: 44e52655bad6
Revises: c41e7a2b9d10
Create Date: 2026-12-03 10:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '44e52655bad6'
down_revision = 'c41e7a2b9d10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=254), nullable=False),
    sa.Column('options', sa.Text(), nullable=False),
    sa.Column('dry_report', sa.Text(), nullable=True),
    sa.Column('report', sa.Text(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['supporter.id'], name=op.f('fk_import_run_actor_id_supporter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_run'))
    )
    with op.batch_alter_table('import_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_run_kind'), ['kind'], unique=False)

    op.create_table('import_chunk',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['import_run.id'], name=op.f('fk_import_chunk_run_id_import_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'position', name=op.f('pk_import_chunk'))
    )


def downgrade():
    op.drop_table('import_chunk')
    with op.batch_alter_table('import_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_run_kind'))
    op.drop_table('import_run')
