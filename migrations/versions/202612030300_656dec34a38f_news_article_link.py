"""news: a story's link is a web address, and stories with distinct ids may share a link

Revision ID: 656dec34a38f
Revises: 3e9a7c51d2b8
Create Date: 2026-12-03 03:00:00

"""
from alembic import op


revision = '656dec34a38f'
down_revision = '3e9a7c51d2b8'
branch_labels = None
depends_on = None

WEB_LINK = "link LIKE 'http://%' OR link LIKE 'https://%'"


def _recreating(step):
    """Run ``step`` (a batch alteration of news_article) keeping the stories' categories.

    SQLite alters a constraint by copying the table and dropping the old one, and with foreign
    keys on, dropping it deletes every row of news_article_category by cascade: they are kept
    aside and put back. PostgreSQL alters the table in place.
    """
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute('CREATE TEMPORARY TABLE keep_news_article_category AS '
                   'SELECT article_id, category_id FROM news_article_category')
    step()
    if sqlite:
        op.execute('INSERT INTO news_article_category (article_id, category_id) '
                   'SELECT article_id, category_id FROM keep_news_article_category '
                   'WHERE article_id IN (SELECT id FROM news_article)')
        op.execute('DROP TABLE keep_news_article_category')


def _delete_articles(where):
    op.execute('DELETE FROM news_article_category WHERE article_id IN '
               f'(SELECT id FROM news_article WHERE {where})')
    op.execute(f'DELETE FROM news_article WHERE {where}')


def upgrade():
    # Stories stored before links were checked: an http(s) link with its scheme in capitals is
    # kept, in lower case; any other link (javascript:, data:, a relative link never resolved)
    # goes, with its story, which the next ingest stores again if the feed's link is usable.
    for scheme in ('http://', 'https://'):
        n = len(scheme)
        op.execute(f"UPDATE news_article SET link = '{scheme}' || substr(link, {n + 1}) "
                   f"WHERE lower(substr(link, 1, {n})) = '{scheme}' "
                   f"AND substr(link, 1, {n}) <> '{scheme}'")
    _delete_articles(f'NOT ({WEB_LINK})')

    def step():
        with op.batch_alter_table('news_article', schema=None) as batch_op:
            batch_op.drop_constraint('uq_news_article_link', type_='unique')
            batch_op.create_check_constraint(batch_op.f('ck_news_article_link_http'), WEB_LINK)

    _recreating(step)


def downgrade():
    # The old schema holds one story per link: of the stories sharing one, the first stored
    # stays.
    _delete_articles('id NOT IN (SELECT min(id) FROM news_article GROUP BY link)')

    def step():
        with op.batch_alter_table('news_article', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('ck_news_article_link_http'), type_='check')
            batch_op.create_unique_constraint(batch_op.f('uq_news_article_link'), ['link'])

    _recreating(step)
