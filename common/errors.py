"""TrailWarden's one error hierarchy.

Foreign exceptions (boto3, gRPC, sqlite3, XML, TOML, ...) are translated into these at the
boundary where they occur, with ``raise ... from exc``, and carry the context an admin needs to
act: bucket/key, file:line, agent ID. Only the gRPC servicers map them to status codes.

    TrailWardenError
    ├── ConfigError                 bad manager.toml / agent.toml / central config (file, key)
    │   └── SecretInConfigError     central config carrying AWS keys or tokens
    ├── CredentialsError            admin credentials bundle or key files unusable
    │   └── InsecureKeyFileError    a private key readable by group/others
    ├── PkiError                    certificate, CSR or CA problems
    ├── EnrollmentError             enrollment refused
    │   ├── TokenError              wrong, expired or used-up token
    │   └── CaPinError              the manager CA does not match --ca-sha256
    ├── AuthError                   peer not allowed (no/unknown/revoked cert, not admin)
    │   └── AgentRefusedError       the manager refuses this agent for good (revoked, ...)
    ├── LinkError                   the agent link failed (connect, stream)
    ├── SourceError                 collecting from a source failed (source, bucket/key)
    │   ├── ObjectError             one object unusable (corrupt gzip, not JSON, bad shape)
    │   │   └── ObjectTooLargeError inflates past the size guard (a gzip bomb)
    │   └── AwsAccessError          profile missing, AccessDenied, missing bucket, ...
    ├── SpoolError                  agent spool I/O (disk full, corrupt entry)
    │   └── SpoolFullError          spool at its byte limit
    ├── DecodeError                 a record cannot become an event (source, index)
    ├── RuleError                   a ruleset problem (file:line); may hold many
    │   └── RulesetError            a ruleset refused, with every error found
    ├── StoreError                  manager database problem (busy, disk, schema)
    ├── OutputError                 an output (alerts file, ...) could not deliver; retried
    ├── PipelineError               analysis could not run (a worker died); no ack
    ├── QueryError                  bad alert query (time, field)
    └── NotFoundError               a named agent, group, revision ... does not exist
"""

from __future__ import annotations

from collections.abc import Sequence


class TrailWardenError(Exception):
    """Base of every error TrailWarden raises on purpose."""


class ConfigError(TrailWardenError):
    """A configuration file or document is invalid; the message names the file and key."""


class SecretInConfigError(ConfigError):
    """Central config must never carry AWS credentials; they stay in the agent host's profiles."""


class CredentialsError(TrailWardenError):
    """Admin credentials bundle, certificate or key file cannot be used."""


class InsecureKeyFileError(CredentialsError):
    """A private key file is readable or writable by group or others."""


class PkiError(TrailWardenError):
    """A certificate, CSR or CA operation failed."""


class EnrollmentError(TrailWardenError):
    """The manager refused to enroll an agent."""


class TokenError(EnrollmentError):
    """The enrollment token is unknown, expired or used up."""


class CaPinError(EnrollmentError):
    """The manager's CA certificate does not match the pinned SHA-256 fingerprint."""


class AuthError(TrailWardenError):
    """The peer is not allowed to do this (no certificate, unknown, revoked, not admin)."""


class AgentRefusedError(AuthError):
    """The manager refuses this agent's certificate for good: revoked, superseded by a newer
    enrollment, or unknown to its registry. Retrying cannot help; the agent exits with
    ``EXIT_AGENT_REFUSED`` so a supervisor does not restart it (re-enroll instead)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the manager refuses this agent: {reason}; retrying cannot help — re-enroll it "
            "with a new token (trailwarden agent enroll)"
        )
        self.reason = reason


EXIT_AGENT_REFUSED = 3
"""Exit status of an agent the manager refuses for good (systemd: RestartPreventExitStatus)."""


class LinkError(TrailWardenError):
    """The agent link to the manager failed."""


class SourceError(TrailWardenError):
    """Collecting from a source failed."""

    def __init__(self, message: str, *, source: str = "", where: str = "") -> None:
        self.source = source
        self.where = where
        prefix = " ".join(part for part in (f"[{source}]" if source else "", where) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.reason = message


class ObjectError(SourceError):
    """One object (or file) cannot be used: corrupt gzip, not JSON, wrong shape."""


class ObjectTooLargeError(ObjectError):
    """An object inflates past the agent's size guard (``logfile.MAX_DECOMPRESSED_BYTES``)."""


class AwsAccessError(SourceError):
    """AWS refused or could not be reached: profile not found, AccessDenied, no such bucket."""


class SpoolError(TrailWardenError):
    """The agent's on-disk spool failed."""


class SpoolFullError(SpoolError):
    """The spool holds as many bytes as it may; fetching must wait for acks."""


class DecodeError(TrailWardenError):
    """A record cannot be decoded into an event."""


class RuleError(TrailWardenError):
    """A problem in a rule file, located by file and line."""

    def __init__(self, message: str, *, file: str = "", line: int = 0) -> None:
        self.file = file
        self.line = line
        self.reason = message
        location = f"{file}:{line}" if file and line else file
        super().__init__(f"{location}: {message}" if location else message)


class RulesetError(RuleError):
    """A ruleset was refused; ``errors`` holds every problem found, not only the first."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        RuleError.__init__(self, f"ruleset refused, {len(self.errors)} error(s):\n{lines}")


class StoreError(TrailWardenError):
    """The manager's database failed (busy, disk full, schema)."""


class OutputError(TrailWardenError):
    """An output could not deliver alerts (disk full, endpoint down); its cursor stays put and
    the delivery loop retries from the store."""


class PipelineError(TrailWardenError):
    """The analysis pipeline could not process a batch; it is not acknowledged and is resent."""


class QueryError(TrailWardenError):
    """An alert query is invalid (bad time, unknown field)."""


class NotFoundError(TrailWardenError):
    """A named thing (agent, group, revision) does not exist."""


class InUseError(TrailWardenError):
    """A thing cannot be removed while others still use it (a group with agents in it)."""
