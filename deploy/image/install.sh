#!/bin/sh
# The image's install steps, in one script: deploy/image/Containerfile runs it in its
# build stage and tests/deploy/test_image.py runs it into a fresh directory, so the two
# cannot drift apart.
#
#   install.sh VENV SDK_WHEEL PROJECT...
#
# Makes a virtual environment at VENV holding the SDK wheel that `nox -s build` wrote and
# the projects (services/, gateway/) with their dependencies from the package index, checks
# that they fit together, then removes pip and setuptools: the runtime installs nothing.
set -eu
if [ "$#" -lt 3 ]; then
    echo "usage: install.sh VENV SDK_WHEEL PROJECT..." >&2
    exit 2
fi
venv=$1
wheel=$2
shift 2
if [ ! -f "$wheel" ]; then
    echo "install.sh: no SDK wheel at $wheel: run \`nox -s build\` first" >&2
    exit 2
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" "$@"
"$venv/bin/python" -m pip check --disable-pip-version-check
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools
