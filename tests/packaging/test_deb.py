"""Build the .deb with packaging/deb/build.sh (about 50 s) and check what it installs.

The build needs dpkg-deb and PyPI (or a local index/wheelhouse) to fill the venv. The units are
checked with ``systemd-analyze verify`` against the extracted package (and, as everywhere, with
the static checks of test_units_and_config.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "packaging" / "deb" / "build.sh"
VENV = "opt/trailwarden/venv"
UNITS = ("trailwarden-manager.service", "trailwarden-agent.service")

# The build fills a venv with pip (about 50 s idle, more on a busy machine): allow for it, and
# let developers leave it out with -m "not slow"; CI runs it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class BuiltPackage:
    deb: Path
    root: Path
    """The package extracted with ``dpkg-deb -x``."""
    listing: str
    """``dpkg-deb -c`` output."""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltPackage]:
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        ["bash", str(BUILD), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
        env={**os.environ, "PIP_PROGRESS_BAR": "off"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    deb = Path(result.stdout.strip().splitlines()[-1])
    assert deb.parent == out and deb.name.startswith("trailwarden_") and deb.suffix == ".deb"
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    yield BuiltPackage(deb, root, listing)


def field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_control_fields(package: BuiltPackage) -> None:
    assert field(package.deb, "Package") == "trailwarden"
    assert field(package.deb, "Version") == "0.1.0"
    depends = field(package.deb, "Depends")
    assert "python3.11" in depends and "adduser" in depends
    control = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(package.deb)], capture_output=True, check=True
    ).stdout
    assert b"./postinst" in control and b"./prerm" in control and b"./postrm" in control


def test_contents_list_units_venv_command_and_examples(package: BuiltPackage) -> None:
    listing = package.listing
    for unit in UNITS:
        assert f"./lib/systemd/system/{unit}" in listing
    assert f"./{VENV}/bin/trailwarden" in listing
    assert f"./usr/bin/trailwarden -> /{VENV}/bin/trailwarden" in listing
    assert "./usr/share/bash-completion/completions/trailwarden" in listing
    assert "./usr/share/zsh/vendor-completions/_trailwarden" in listing
    assert "./usr/share/trailwarden/examples/manager.toml" in listing
    assert "./usr/share/trailwarden/examples/agent.toml" in listing
    assert "/site-packages/trailwarden/manager/" in listing
    assert "/site-packages/trailwarden/common/generator/catalogue.py" in listing
    # Runtime dependencies only: the demo's S3 emulator and the test tools stay out.
    site_packages = {
        line.split("/site-packages/", 1)[1].split("/", 1)[0].lower()
        for line in listing.splitlines()
        if "/site-packages/" in line and line.split("/site-packages/", 1)[1]
    }
    test_only = {
        "moto",
        "flask",
        "docker",
        "pytest",
        "_pytest",
        "hypothesis",
        "mypy",
        "ruff",
        "grpc_tools",
        "werkzeug",
        "playwright",
        "responses",
        "cfn_lint",
    }
    assert site_packages & test_only == set()
    assert {"grpc", "boto3", "botocore", "cryptography", "google", "orjson"} <= site_packages
    # The project README and the docs index (docs/README.md) both ship, neither over the other.
    assert "./usr/share/doc/trailwarden/README.md" in listing
    assert "./usr/share/doc/trailwarden/docs/README.md" in listing
    assert "./usr/share/doc/trailwarden/docs/CONFIGURATION.md" in listing
    # Everything is owned by root (the services run as their own users and only write state).
    owners = {line.split()[1] for line in listing.splitlines() if line.strip()}
    assert owners == {"root/root"}


def test_venv_points_at_opt_not_at_the_build_folder(package: BuiltPackage) -> None:
    script = (package.root / VENV / "bin" / "trailwarden").read_text()
    assert script.startswith(f"#!/{VENV}/bin/python")
    config = (package.root / VENV / "pyvenv.cfg").read_text()
    assert "/tmp" not in config
    assert "home = /usr/bin" in config
    assert os.readlink(package.root / VENV / "bin" / "python3") == "/usr/bin/python3"


def test_packaged_command_runs(package: BuiltPackage, tmp_path: Path) -> None:
    python = str(package.root / VENV / "bin" / "python")
    command = str(package.root / VENV / "bin" / "trailwarden")
    help_text = subprocess.run(
        [python, command, "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for sub in ("manager", "agent", "admin", "generate", "demo"):
        assert sub in help_text
    result = subprocess.run(
        [python, command, "generate", "--events", "60", "--seed", "2", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.rglob("*_CloudTrail_*.json.gz"))
    imported = subprocess.run(
        [python, "-c", "import trailwarden.manager.server, trailwarden.agent.runner"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    # Without the demo extra the demo says what to install, in one line.
    demo = subprocess.run(
        [python, command, "demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert demo.returncode != 0
    assert "trailwarden[demo]" in demo.stderr and "Traceback" not in demo.stderr


def test_systemd_analyze_accepts_the_packaged_units(package: BuiltPackage) -> None:
    analyze = shutil.which("systemd-analyze")
    units = [package.root / "lib" / "systemd" / "system" / unit for unit in UNITS]
    for unit in units:
        text = unit.read_text()
        assert f"ExecStart=/{VENV}/bin/trailwarden " in text
        assert os.access(package.root / VENV / "bin" / "trailwarden", os.X_OK)
    if analyze is None:
        # Without systemd the static checks in test_units_and_config.py are the whole check.
        return
    # verify resolves ExecStart and dependencies under --root: give it the host's targets.
    system_dir = package.root / "lib" / "systemd" / "system"
    for item in Path("/lib/systemd/system").glob("*.target"):
        if not (system_dir / item.name).exists():
            shutil.copy(item, system_dir / item.name, follow_symlinks=True)
    result = subprocess.run(
        [analyze, "verify", f"--root={package.root}", *(f"/lib/systemd/system/{u}" for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "trailwarden" in line]
    assert ours == [], ours  # verify only warns about bad values: any mention is a problem
    for unit in UNITS:
        security = subprocess.run(
            [
                analyze,
                "security",
                "--offline=yes",
                f"--root={package.root}",
                "--threshold=40",
                f"/lib/systemd/system/{unit}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert security.returncode == 0, security.stdout[-2000:]
        assert "Overall exposure level" in security.stdout


def test_docs_the_units_and_postinst_point_at_are_in_the_package(package: BuiltPackage) -> None:
    import re

    texts = [(package.root / "lib" / "systemd" / "system" / unit).read_text() for unit in UNITS]
    postinst = subprocess.run(
        ["dpkg-deb", "-I", str(package.deb), "postinst"], capture_output=True, text=True, check=True
    ).stdout
    paths = set()
    for text in texts:
        for line in text.splitlines():
            if line.startswith("Documentation="):
                paths.update(re.findall(r"file://(/\S+)", line))
    paths.update(re.findall(r"(/usr/share/doc/trailwarden/\S+\.md)", postinst))
    assert len(paths) >= 2
    for path in paths:
        assert (package.root / path.lstrip("/")).is_file(), f"{path} is not in the package"


def test_depends_on_the_python_the_venv_links_against(package: BuiltPackage) -> None:
    home = next(
        line.split("=", 1)[1].strip()
        for line in (package.root / VENV / "pyvenv.cfg").read_text().splitlines()
        if line.startswith("home")
    )
    owner = subprocess.run(
        ["dpkg", "-S", os.path.realpath(os.path.join(home, "python3"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(":", 1)[0]
    assert owner.removesuffix("-minimal") in field(package.deb, "Depends").split(", ")
