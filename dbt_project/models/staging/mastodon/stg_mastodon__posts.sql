-- Mastodon: a status replying to nothing = thread; a reply = reply; thread_id is its
-- oldest known ancestor (connectors/mastodon.py, docs/connectors/mastodon.md).
{{ staging_posts('mastodon', record_types=('thread', 'reply')) }}
