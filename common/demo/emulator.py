"""The demo's stand-in for AWS: moto's S3 server in-process on loopback, and a profile for it.

moto is an optional dependency (the ``demo`` extra); it is imported only here and only when the
demo starts, so the rest of TrailWarden never needs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailwarden.common.errors import TrailWardenError

log = logging.getLogger(__name__)

PROFILE = "trailwarden-demo"
"""The AWS profile name the demo's agent uses."""
REGION = "us-east-1"
# moto accepts any key; these only have to look like keys so botocore signs requests.
_DEMO_ACCESS_KEY = "AKIADEMODEMODEMODEMO"
_DEMO_SECRET = "demo-secret-for-the-local-emulator"  # noqa: S105 - not a secret


class EmulatorError(TrailWardenError):
    """The S3 emulator could not be started (moto missing or the port refused)."""


@dataclass(frozen=True, slots=True)
class AwsFiles:
    """AWS config + credentials files holding the demo profile."""

    config: Path
    credentials: Path

    def environment(self) -> dict[str, str]:
        """Variables that make boto3 read these files and nothing else."""
        return {
            "AWS_CONFIG_FILE": str(self.config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
        }


class S3Emulator:
    """moto's threaded server on 127.0.0.1 and a free port; ``url`` once started."""

    def __init__(self) -> None:
        self._server: Any = None
        self.url = ""

    def start(self) -> str:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise EmulatorError(
                "the demo needs moto's server: pip install 'trailwarden[demo]'"
            ) from exc
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        try:
            server.start()
        except OSError as exc:
            raise EmulatorError(f"cannot start the S3 emulator on loopback: {exc}") from exc
        host, port = server.get_host_and_port()
        self._server = server
        self.url = f"http://{host}:{port}"
        log.info("demo: S3 emulator at %s", self.url)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def write_profile(self, folder: Path) -> AwsFiles:
        """A profile named ``PROFILE`` whose S3 endpoint is this emulator."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = folder / "config"
        credentials = folder / "credentials"
        config.write_text(f"[profile {PROFILE}]\nregion = {REGION}\nendpoint_url = {self.url}\n")
        credentials.write_text(
            f"[{PROFILE}]\naws_access_key_id = {_DEMO_ACCESS_KEY}\n"
            f"aws_secret_access_key = {_DEMO_SECRET}\n"
        )
        credentials.chmod(0o600)
        return AwsFiles(config, credentials)
