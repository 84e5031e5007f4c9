-- X: a post that replies to nothing starts its conversation = thread; a reply = reply;
-- thread_id is the conversation id (connectors/x.py, docs/connectors/x.md).
{{ staging_posts('x', record_types=('thread', 'reply')) }}
