-- Discourse: first post of a topic = thread, other posts = reply (connectors/discourse.py).
{{ staging_posts('discourse', record_types=('thread', 'reply')) }}
