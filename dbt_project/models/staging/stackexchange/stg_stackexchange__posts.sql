-- Stack Exchange: question = thread; answers and comments = reply (connectors/stackexchange.py).
{{ staging_posts('stackexchange', record_types=('thread', 'reply')) }}
