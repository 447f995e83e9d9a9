"""The SQLite backend of the store: the database wrapper, the alert store, its stats and its WAL
checkpointer. The embedded default; the protocols it implements are in ``store/base.py``."""
