"""campaigns, gifts, plans, ledger, provider events, outbound email

Revision ID: 323799befed5
Revises: 
Create Date: 2026-11-25 08:35:39

"""
from alembic import op
import sqlalchemy as sa


revision = '323799befed5'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('anniversary', 'holiday', 'year_end', 'general', name='campaignkind', native_enum=False, length=20), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('appeal_markdown', sa.Text(), nullable=False),
    sa.Column('signatory_name', sa.String(length=200), nullable=False),
    sa.Column('signatory_title', sa.String(length=200), nullable=False),
    sa.Column('thank_you_message', sa.Text(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('goal_amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('default_frequency', sa.Enum('one_time', 'monthly', 'annual', name='frequency', native_enum=False, length=20), nullable=False),
    sa.Column('match_amount', sa.Integer(), nullable=True),
    sa.Column('match_sponsor', sa.String(length=200), nullable=True),
    sa.Column('match_ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_campaign_ends_after_start')),
    sa.CheckConstraint('goal_amount > 0', name=op.f('ck_campaign_goal_positive')),
    sa.CheckConstraint('match_amount IS NULL OR match_amount > 0', name=op.f('ck_campaign_match_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign')),
    sa.UniqueConstraint('slug', name=op.f('uq_campaign_slug'))
    )
    op.create_table('outbound_email',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_email')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbound_email_dedupe_key'))
    )
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_email_sent_at'), ['sent_at'], unique=False)

    op.create_table('provider_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_event')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_event_provider_event_id'))
    )
    op.create_table('supporter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_supporter_email_lowercase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supporter')),
    sa.UniqueConstraint('email', name=op.f('uq_supporter_email'))
    )
    op.create_table('recurring_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.Enum('one_time', 'monthly', 'annual', name='frequency', native_enum=False, length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('fee_covered', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('active', 'canceled', name='planstatus', native_enum=False, length=20), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_subscription_id', sa.String(length=255), nullable=False),
    sa.Column('provider_customer_id', sa.String(length=255), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_charge_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('periods_paid', sa.Integer(), nullable=False),
    sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_recurring_plan_amount_positive')),
    sa.CheckConstraint('fee_covered >= 0', name=op.f('ck_recurring_plan_fee_not_negative')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_recurring_plan_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_recurring_plan_supporter_id_supporter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_plan')),
    sa.UniqueConstraint('provider_subscription_id', name=op.f('uq_recurring_plan_provider_subscription_id'))
    )
    with op.batch_alter_table('recurring_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recurring_plan_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recurring_plan_next_charge_at'), ['next_charge_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recurring_plan_supporter_id'), ['supporter_id'], unique=False)

    op.create_table('suggested_amount',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('impact', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_suggested_amount_amount_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_suggested_amount_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suggested_amount'))
    )
    with op.batch_alter_table('suggested_amount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suggested_amount_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('gift',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('submission_key', sa.String(length=64), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('frequency', sa.Enum('one_time', 'monthly', 'annual', name='frequency', native_enum=False, length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('fee_covered', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('pending', 'paid', name='giftstatus', native_enum=False, length=20), nullable=False),
    sa.Column('donor_name', sa.String(length=200), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('dedication', sa.Enum('honour', 'memory', name='dedication', native_enum=False, length=20), nullable=True),
    sa.Column('dedication_name', sa.String(length=200), nullable=True),
    sa.Column('dedication_email', sa.String(length=254), nullable=True),
    sa.Column('utm_source', sa.String(length=100), nullable=True),
    sa.Column('utm_medium', sa.String(length=100), nullable=True),
    sa.Column('utm_campaign', sa.String(length=100), nullable=True),
    sa.Column('utm_term', sa.String(length=100), nullable=True),
    sa.Column('utm_content', sa.String(length=100), nullable=True),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('checkout_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_gift_amount_positive')),
    sa.CheckConstraint('fee_covered >= 0', name=op.f('ck_gift_fee_not_negative')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_gift_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['plan_id'], ['recurring_plan.id'], name=op.f('fk_gift_plan_id_recurring_plan')),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_gift_supporter_id_supporter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gift')),
    sa.UniqueConstraint('checkout_id', name=op.f('uq_gift_checkout_id')),
    sa.UniqueConstraint('public_id', name=op.f('uq_gift_public_id')),
    sa.UniqueConstraint('submission_key', name=op.f('uq_gift_submission_key'))
    )
    with op.batch_alter_table('gift', schema=None) as batch_op:
        batch_op.create_index('ix_gift_campaign_status_supporter', ['campaign_id', 'status', 'supporter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gift_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gift_supporter_id'), ['supporter_id'], unique=False)

    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gift_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('charge', 'refund', 'dispute', 'dispute_won', name='paymentkind', native_enum=False, length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_id', sa.String(length=255), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_amount_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_payment_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['gift_id'], ['gift.id'], name=op.f('fk_payment_gift_id_gift')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('provider', 'provider_id', name=op.f('uq_payment_provider_provider_id'))
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index('ix_payment_campaign_kind_amount', ['campaign_id', 'kind', 'amount'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_gift_id'), ['gift_id'], unique=False)



def downgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_gift_id'))
        batch_op.drop_index('ix_payment_campaign_kind_amount')

    op.drop_table('payment')
    with op.batch_alter_table('gift', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gift_supporter_id'))
        batch_op.drop_index(batch_op.f('ix_gift_plan_id'))
        batch_op.drop_index('ix_gift_campaign_status_supporter')

    op.drop_table('gift')
    with op.batch_alter_table('suggested_amount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suggested_amount_campaign_id'))

    op.drop_table('suggested_amount')
    with op.batch_alter_table('recurring_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recurring_plan_supporter_id'))
        batch_op.drop_index(batch_op.f('ix_recurring_plan_next_charge_at'))
        batch_op.drop_index(batch_op.f('ix_recurring_plan_campaign_id'))

    op.drop_table('recurring_plan')
    op.drop_table('supporter')
    op.drop_table('provider_event')
    with op.batch_alter_table('outbound_email', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_email_sent_at'))

    op.drop_table('outbound_email')
    op.drop_table('campaign')
