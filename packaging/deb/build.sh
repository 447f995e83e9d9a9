#!/usr/bin/env bash
# Build the TrailWarden Debian package: trailwarden_<version>_<arch>.deb
#
#   packaging/deb/build.sh [--out DIR] [--python /usr/bin/python3] [--wheelhouse DIR]
#
# The package holds a virtual environment under /opt/trailwarden/venv (the project and its
# runtime dependencies only — no demo or test extras — installed by pip from PyPI or, with
# --wheelhouse, offline from a folder of wheels), /usr/bin/trailwarden, the systemd units,
# reference manager.toml/agent.toml and the docs. postinst creates the trailwarden-manager and
# trailwarden-agent system users. The venv is bound to the Python it is built with, which must
# come from a Debian package: the .deb depends on that package. Build on the release you deploy to.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/dist"
python="/usr/bin/python3"
wheelhouse=""

while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --wheelhouse) wheelhouse="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

for tool in dpkg-deb dpkg "$python"; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found" >&2; exit 1; }
done
# The venv links against this interpreter: the package must depend on the Debian package that
# installs it (a pyenv or /usr/local Python would leave the venv pointing at nothing).
python_real="$(realpath "$(command -v "$python")")"
python_package="$(dpkg -S "$python_real" 2>/dev/null | head -1 | cut -d: -f1)" || true
if [ -z "$python_package" ]; then
    echo "build.sh: $python_real belongs to no Debian package; build with a Debian Python (--python /usr/bin/python3)" >&2
    exit 1
fi
python_package="${python_package%-minimal}"   # python3.11-minimal -> python3.11 (the full stdlib)

prefix=/opt/trailwarden
venv="$prefix/venv"
version="$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")"
pyver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
arch="$(dpkg --print-architecture)"
package="trailwarden_${version}_${arch}.deb"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/root"
source_copy="$work/src"

echo "build.sh: trailwarden $version for python$pyver/$arch"

# Build from a clean copy so the checkout gets no build/ or egg-info droppings.
mkdir -p "$source_copy"
for item in pyproject.toml setup.py README.md LICENSE agent manager common proto; do
    [ -e "$repo/$item" ] && cp -a "$repo/$item" "$source_copy/"
done
find "$source_copy" -name __pycache__ -prune -exec rm -rf {} +
if [ ! -e "$source_copy/README.md" ]; then
    echo "build.sh: warning: README.md missing, packaging without it" >&2
    echo "TrailWarden" > "$source_copy/README.md"
fi

"$python" -m venv "$stage$venv"
pip=("$stage$venv/bin/python" -m pip --disable-pip-version-check --no-input --quiet)
if [ -n "$wheelhouse" ]; then
    pip_source=(--no-index --find-links "$wheelhouse")
else
    pip_source=()
fi
"${pip[@]}" install --no-compile "${pip_source[@]}" "$source_copy"
"${pip[@]}" uninstall --yes pip >/dev/null 2>&1 || true

# The venv was built under the staging folder: point scripts and pyvenv.cfg at /opt.
grep -rlI --null "$stage$venv" "$stage$venv/bin" "$stage$venv/pyvenv.cfg" 2>/dev/null \
    | xargs -0 --no-run-if-empty sed -i "s|$stage$venv|$venv|g"
find "$stage$venv" -name direct_url.json -path '*trailwarden*' -delete
find "$stage$venv" -name __pycache__ -prune -exec rm -rf {} +
if grep -rqI "$stage" "$stage$venv/bin" "$stage$venv/pyvenv.cfg"; then
    echo "build.sh: staging path left in the venv" >&2
    exit 1
fi

install -d "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/usr/share/trailwarden/examples" \
    "$stage/usr/share/doc/trailwarden/docs" "$stage/etc/trailwarden/aws" "$stage/DEBIAN"
ln -s "$venv/bin/trailwarden" "$stage/usr/bin/trailwarden"
# Shell completion, generated from the packaged command's own parser.
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions"
"$stage$venv/bin/python" -m trailwarden.common.cli completion bash \
    > "$stage/usr/share/bash-completion/completions/trailwarden"
"$stage$venv/bin/python" -m trailwarden.common.cli completion zsh \
    > "$stage/usr/share/zsh/vendor-completions/_trailwarden"
install -m 0644 "$repo"/packaging/systemd/*.service "$stage/lib/systemd/system/"
install -m 0644 "$repo/packaging/config/manager.toml" "$repo/packaging/config/agent.toml" \
    "$stage/usr/share/trailwarden/examples/"
# docs/ keeps its own folder: docs/README.md (the index) must not replace the project README.
install -m 0644 "$repo/README.md" "$stage/usr/share/doc/trailwarden/"
install -m 0644 "$repo"/docs/*.md "$stage/usr/share/doc/trailwarden/docs/"
cat > "$stage/usr/share/doc/trailwarden/copyright" <<COPY
TrailWarden $version
License: Apache-2.0 (see /usr/share/common-licenses/Apache-2.0).
The virtual environment under $venv bundles third-party packages under their own licences;
their metadata (licence files) is kept in each package's .dist-info folder.
COPY

installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@PYVER@/$pyver/" \
    -e "s/@SIZE@/$installed_kb/" -e "s/@PYTHON_PACKAGE@/$python_package/" "$here/control.in" > "$stage/DEBIAN/control"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$stage/DEBIAN/$script"
done

mkdir -p "$out"
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out/$package" >/dev/null
echo "$out/$package"
