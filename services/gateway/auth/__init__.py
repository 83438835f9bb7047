"""Who is calling, and may they: API keys, JWT sessions, roles, rate limits.

Reads top-down: ``roles`` (the role order and the principal), ``credentials`` (key and token
formats, hashing), ``store`` (the persistence interface: ``store_sqlite`` for one process,
``store_kv`` for replicas sharing a JetStream KV bucket), ``tokens`` (JWT), ``authenticator``
(credential to principal: the in-memory view and the verification cache), ``sessions`` (login,
refresh, logout), ``accounts`` (users and keys), ``ratelimit``, ``guard`` (the Litestar guard),
``bootstrap`` (the first admin), ``runtime`` (all of it assembled, with one lifecycle).
"""
