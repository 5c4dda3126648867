"""prompts: staff-made appeals for the newsroom's article pages, their A/B copy and
frequency, their counters per variant and day (aggregates only), and the campaigns whose
appeal the daily email carries (issue 13)

Revision ID: a979500d222d
Revises: 3846d5cfc3d4
Create Date: 2026-12-03 09:34:39

"""
from alembic import op
import sqlalchemy as sa


revision = 'a979500d222d'
down_revision = '3846d5cfc3d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('email_appeal',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('switched_on_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_email_appeal_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_email_appeal'))
    )
    op.create_table('prompt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('placement', sa.Enum('inline', 'overlay', 'bottom_bar', name='placement', native_enum=False, length=20), nullable=False),
    sa.Column('segment', sa.Enum('everyone', 'non_donor', 'former_donor', 'monthly_donor', 'subscriber', 'not_subscriber', 'from_email', 'engaged', 'follower', name='segment', native_enum=False, length=20), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('min_views', sa.Integer(), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('start_at_view', sa.Integer(), nullable=False),
    sa.Column('every_nth_view', sa.Integer(), nullable=False),
    sa.Column('max_times', sa.Integer(), nullable=True),
    sa.Column('reset', sa.Enum('never', 'daily', 'weekly', 'monthly', name='reset', native_enum=False, length=20), nullable=False),
    sa.Column('gave_hide_days', sa.Integer(), nullable=False),
    sa.Column('headline_a', sa.String(length=200), nullable=False),
    sa.Column('body_a', sa.Text(), nullable=False),
    sa.Column('button_a', sa.String(length=60), nullable=False),
    sa.Column('headline_b', sa.String(length=200), nullable=False),
    sa.Column('body_b', sa.Text(), nullable=False),
    sa.Column('button_b', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_prompt_ends_after_start')),
    sa.CheckConstraint('every_nth_view >= 1', name=op.f('ck_prompt_every_nth_view_positive')),
    sa.CheckConstraint('gave_hide_days >= 0', name=op.f('ck_prompt_gave_hide_days_not_negative')),
    sa.CheckConstraint('max_times IS NULL OR max_times >= 1', name=op.f('ck_prompt_max_times_positive')),
    sa.CheckConstraint('start_at_view >= 1', name=op.f('ck_prompt_start_at_view_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_prompt_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['category_id'], ['news_category.id'], name=op.f('fk_prompt_category_id_news_category'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt'))
    )
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('prompt_count',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('variant', sa.String(length=1), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('impressions', sa.Integer(), nullable=False),
    sa.Column('dismissals', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_prompt_count_prompt_id_prompt'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_count')),
    sa.UniqueConstraint('prompt_id', 'variant', 'day', name=op.f('uq_prompt_count_prompt_id_variant_day'))
    )


def downgrade():
    op.drop_table('prompt_count')
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_campaign_id'))

    op.drop_table('prompt')
    op.drop_table('email_appeal')
