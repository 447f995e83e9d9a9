"""Console accounts: add, list, remove, change a password, and check a login.

The one place where names and passwords are checked against the policy and passwords are
hashed, shared by the Admin API (`trailwarden admin user …`) and the console's login form.
Everything here blocks (argon2 and the database): call it from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from trailwarden.manager.users import passwords
from trailwarden.manager.users.base import ConsoleUser, UserRecord, UserStore
from trailwarden.manager.users.policy import (
    MAX_PASSWORD_LENGTH,
    check_name,
    check_password,
    generate_password,
    parse_role,
)


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A password set by the manager, to be shown once: '' when the admin chose it."""

    generated: str


class Accounts:
    """Policy and hashing in front of a `UserStore`."""

    def __init__(self, store: UserStore) -> None:
        self.store = store

    def add(
        self, name: str, role: str, password: str, actor: str
    ) -> tuple[UserRecord, NewPassword]:
        """Create a user; an empty ``password`` means: generate one (returned once)."""
        check_name(name)
        chosen_role = parse_role(role)
        chosen, generated = self._password(password, name)
        record = self.store.add_user(name, chosen_role, passwords.hash_password(chosen), actor)
        return record, NewPassword(generated)

    def list(self) -> list[UserRecord]:
        return self.store.list_users()

    def remove(self, name: str, actor: str) -> int:
        """Delete the user; returns how many of its sessions ended."""
        return self.store.remove_user(check_name(name), actor)

    def set_password(self, name: str, password: str, actor: str) -> tuple[int, NewPassword]:
        """New password (generated when empty); every session of the user ends."""
        check_name(name)
        chosen, generated = self._password(password, name)
        ended = self.store.set_password_hash(name, passwords.hash_password(chosen), actor)
        return ended, NewPassword(generated)

    def authenticate(self, name: str, password: str) -> ConsoleUser | None:
        """The user when ``password`` is right, else None — as slowly for an unknown name."""
        found = self.store.password_hash(name) if len(name) <= 64 else None
        if found is None or len(password) > MAX_PASSWORD_LENGTH:
            passwords.burn_verification(password[:MAX_PASSWORD_LENGTH])
            return None
        user, encoded = found
        if not passwords.verify_password(encoded, password):
            return None
        if passwords.needs_rehash(encoded):
            self.store.rehash(name, passwords.hash_password(password))
        return user

    @staticmethod
    def _password(password: str, name: str) -> tuple[str, str]:
        if password:
            return check_password(password, name), ""
        generated = generate_password()
        return generated, generated
