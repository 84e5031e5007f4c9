-- Bluesky: a post replying to nothing = thread; a reply = reply, its thread the record's
-- reply.root (connectors/bluesky.py, docs/connectors/bluesky.md).
{{ staging_posts('bluesky', record_types=('thread', 'reply')) }}
