"""Console users, their roles, passwords and login sessions.

`base.py` holds the domain types and the `UserStore` protocol the console and the Admin API
use; `policy.py` the rules for names and passwords; `passwords.py` the argon2id hashing;
`sqlite.py` the embedded backend in manager.db (a PostgreSQL backend implements the same
protocol).
"""
