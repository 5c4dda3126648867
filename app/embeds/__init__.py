"""The embeds on the newsroom's article pages: ``/embed.js`` and the boxes it frames
(``/embed/campaigns/<slug>``, ``/embed/news/subscribe``, ``/embed/news/follow``), framed and read
only by the sites in ``EMBED_ORIGINS``."""
