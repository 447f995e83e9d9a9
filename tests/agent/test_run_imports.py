"""`trailwarden agent run` must not load the PKI: cryptography costs every agent ~10 MiB of RSS.

A running agent only needs gRPC channel credentials (common/channels.py) and its 0600 key file
(common/keyfiles.py); keys, certificates and CSRs (common/tls.py) belong to enrollment and the
manager. Checked in a fresh interpreter, since this test session has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys

# What `trailwarden agent run` imports: the CLI with every component's subcommands registered,
# then the modules agent/cli.py's run handler loads before it starts the runner.
AGENT_RUN_IMPORTS = """
import sys
from trailwarden.common.cli import build_parser
build_parser().parse_args(["agent", "run", "--home", "/nonexistent"])
import trailwarden.agent.config, trailwarden.agent.identity, trailwarden.agent.runner
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == "cryptography")))
"""


def test_agent_run_does_not_import_cryptography() -> None:
    done = subprocess.run(
        [sys.executable, "-c", AGENT_RUN_IMPORTS], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "", f"agent run imported: {done.stdout.strip()[:300]}"
