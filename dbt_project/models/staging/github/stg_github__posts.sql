-- GitHub: issue or pull request = thread; its comments and review comments = reply
-- (connectors/github.py, docs/connectors/github.md).
{{ staging_posts('github', record_types=('thread', 'reply')) }}
