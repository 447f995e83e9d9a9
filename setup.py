"""Map the user's top-level folders onto the `trailwarden` namespace.

`agent/`, `manager/` and `common/` install as `trailwarden.agent`, `trailwarden.manager` and
`trailwarden.common`, so nothing generic lands at the top of site-packages. `trailwarden` itself
stays an implicit namespace package. Everything else lives in pyproject.toml.
"""

from __future__ import annotations

from setuptools import find_packages, setup

FOLDERS = ("agent", "manager", "common")

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in FOLDERS:
    package_dir[f"trailwarden.{folder}"] = folder
    packages.append(f"trailwarden.{folder}")
    packages.extend(f"trailwarden.{folder}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=package_dir)
