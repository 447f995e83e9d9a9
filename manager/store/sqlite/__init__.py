"""The SQLite backend of the store: the database wrapper, the alert store (schema, rollup counts,
filters as SQL, stats and series) and its WAL checkpointer. The embedded default; the protocols
it implements are in ``store/base.py``."""
