"""CDB-style lists: the ``key:value`` text files Wazuh compiles into CDB databases.

A rule names a list by path (``<list field="aws.eventName" lookup="match_key">
etc/lists/amazon/aws-eventnames</list>``); the path resolves against the *lists root*, so pointing
the root at a Wazuh install (``/var/ossec``) makes its ``etc/lists/...`` paths work. We read the
text source, not the compiled ``.cdb``: one line per entry, ``key:value`` or ``key:`` or ``key``;
a key containing ``:`` is written in double quotes (``"arn:aws:iam::1:root":admin``); blank lines
and ``#`` comments are skipped.
"""

from __future__ import annotations

from pathlib import Path

from trailwarden.common.errors import RuleError


class ListCache:
    """Loads each list file once per ruleset load, so many rules can share one list."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._loaded: dict[Path, dict[str, str]] = {}

    def resolve(self, name: str, rule_file: Path) -> Path:
        """Absolute path of list ``name``: against the lists root, else the rule file's folder."""
        path = Path(name)
        if path.is_absolute():
            return path
        base = self.root if self.root is not None else rule_file.parent
        return base / path

    def load(self, name: str, rule_file: Path, line: int) -> dict[str, str]:
        path = self.resolve(name, rule_file)
        if path in self._loaded:
            return self._loaded[path]
        if not path.is_file() and path.suffix == ".cdb":
            path = path.with_suffix("")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            hint = "" if self.root is not None else " (set --lists-root to resolve list paths)"
            raise RuleError(
                f"cannot read list {name!r} at {path}: {exc}{hint}", file=str(rule_file), line=line
            ) from exc
        entries = parse_list(text, str(path))
        self._loaded[path] = entries
        return entries


def parse_list(text: str, where: str) -> dict[str, str]:
    """Entries of a CDB list source; RuleError naming file:line for a malformed line."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith('"'):
            end = line.find('"', 1)
            if end < 0:
                raise RuleError("unterminated quoted key", file=where, line=number)
            key = line[1:end]
            rest = line[end + 1 :]
            if rest and not rest.startswith(":"):
                raise RuleError("expected ':' after the quoted key", file=where, line=number)
            value = rest[1:]
        else:
            key, _, value = line.partition(":")
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        entries[key] = value
    return entries
