-- MediaWiki: revisions of the configured talk pages = edit, a contribution; thread_id is
-- the page, parent_actor the previous revision's editor (connectors/mediawiki.py).
{{ staging_posts('mediawiki', record_types=('edit',)) }}
