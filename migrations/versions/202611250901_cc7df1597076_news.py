"""news: categories, articles, follows, subscribers, daily digest

Revision ID: cc7df1597076
Revises: 0f4587ffab09
Create Date: 2026-11-25 09:01:48

"""
from alembic import op
import sqlalchemy as sa


revision = 'cc7df1597076'
down_revision = '0f4587ffab09'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('news_article',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guid', sa.String(length=500), nullable=False),
    sa.Column('link', sa.String(length=2000), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('is_top', sa.Boolean(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_news_article')),
    sa.UniqueConstraint('guid', name=op.f('uq_news_article_guid')),
    sa.UniqueConstraint('link', name=op.f('uq_news_article_link'))
    )
    with op.batch_alter_table('news_article', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_news_article_published_at'), ['published_at'], unique=False)

    op.create_table('news_category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('region', 'topic', name='categorykind', native_enum=False, length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('slug = lower(slug)', name=op.f('ck_news_category_slug_lowercase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_news_category')),
    sa.UniqueConstraint('slug', name=op.f('uq_news_category_slug'))
    )
    op.create_table('news_digest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest_date', sa.Date(), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_news_digest')),
    sa.UniqueConstraint('digest_date', name=op.f('uq_news_digest_digest_date'))
    )
    op.create_table('news_article_category',
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['news_article.id'], name=op.f('fk_news_article_category_article_id_news_article'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['category_id'], ['news_category.id'], name=op.f('fk_news_article_category_category_id_news_category'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', 'category_id', name=op.f('pk_news_article_category'))
    )
    with op.batch_alter_table('news_article_category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_news_article_category_category_id'), ['category_id'], unique=False)

    op.create_table('news_follow',
    sa.Column('supporter_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['news_category.id'], name=op.f('fk_news_follow_category_id_news_category'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_news_follow_supporter_id_supporter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('supporter_id', 'category_id', name=op.f('pk_news_follow'))
    )
    with op.batch_alter_table('news_follow', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_news_follow_category_id'), ['category_id'], unique=False)

    op.create_table('news_subscriber',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('supporter_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'confirmed', 'unsubscribed', name='subscriberstatus', native_enum=False, length=20), nullable=False),
    sa.Column('consent_version', sa.String(length=40), nullable=False),
    sa.Column('consented_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consent_source', sa.String(length=200), nullable=False),
    sa.Column('confirm_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_news_subscriber_email_lowercase')),
    sa.ForeignKeyConstraint(['supporter_id'], ['supporter.id'], name=op.f('fk_news_subscriber_supporter_id_supporter'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_news_subscriber')),
    sa.UniqueConstraint('email', name=op.f('uq_news_subscriber_email'))
    )
    with op.batch_alter_table('news_subscriber', schema=None) as batch_op:
        batch_op.create_index('ix_news_subscriber_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_news_subscriber_supporter_id'), ['supporter_id'], unique=False)

    op.create_table('news_digest_send',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('digest_date', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('claimed', 'sent', 'failed', name='sendstatus', native_enum=False, length=20), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('articles', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['news_subscriber.id'], name=op.f('fk_news_digest_send_subscriber_id_news_subscriber'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_news_digest_send')),
    sa.UniqueConstraint('subscriber_id', 'digest_date', name=op.f('uq_news_digest_send_subscriber_id_digest_date'))
    )
    with op.batch_alter_table('news_digest_send', schema=None) as batch_op:
        batch_op.create_index('ix_news_digest_send_date_status', ['digest_date', 'status'], unique=False)



def downgrade():
    with op.batch_alter_table('news_digest_send', schema=None) as batch_op:
        batch_op.drop_index('ix_news_digest_send_date_status')

    op.drop_table('news_digest_send')
    with op.batch_alter_table('news_subscriber', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_news_subscriber_supporter_id'))
        batch_op.drop_index('ix_news_subscriber_status_id')

    op.drop_table('news_subscriber')
    with op.batch_alter_table('news_follow', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_news_follow_category_id'))

    op.drop_table('news_follow')
    with op.batch_alter_table('news_article_category', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_news_article_category_category_id'))

    op.drop_table('news_article_category')
    op.drop_table('news_digest')
    op.drop_table('news_category')
    with op.batch_alter_table('news_article', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_news_article_published_at'))

    op.drop_table('news_article')
