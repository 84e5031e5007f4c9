-- GitLab: issue or merge request = thread; its discussion notes = reply, answering the
-- thread or the first note of their discussion (connectors/gitlab.py, docs/connectors/gitlab.md).
{{ staging_posts('gitlab', record_types=('thread', 'reply')) }}
