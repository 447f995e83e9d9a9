"""The PostgreSQL backend of the store (``[store] url = "postgresql://..."``): a connection pool
with versioned migrations (``database.py``), the schema (``schema.py``), filters as SQL
(``filters.py``), counting for stats and series (``aggregate.py``) and the alert store itself
(``alerts.py``). It implements the same ``AlertStore`` protocol as the embedded SQLite backend
and passes the same contract tests (``tests/manager/store/contract/``)."""
