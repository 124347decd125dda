#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs the bpcourse grader into a virtual environment of its own
# (/opt/bpcourse) from the wheel next to this file (bpcourse-*.whl) or, failing
# that, from a copy of the project in the folder bpcourse/ next to this file:
# the package and its "grader" requirements only, without JupyterLab.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${BPCOURSE_VENV:-/opt/bpcourse}"

apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: bpcourse needs Python 3.11 or later; choose the Ubuntu 24.04 base image or newer" >&2
  exit 1
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip

shopt -s nullglob
wheels=("$SOURCE"/bpcourse-*.whl)
if [ "${#wheels[@]}" -eq 1 ]; then
  package="${wheels[0]}"
elif [ "${#wheels[@]}" -gt 1 ]; then
  echo "setup.sh: several wheels next to setup.sh (${wheels[*]}); keep one" >&2
  exit 1
elif [ -f "$SOURCE/bpcourse/pyproject.toml" ]; then
  package="$SOURCE/bpcourse"
else
  echo "setup.sh: put bpcourse-*.whl, or a copy of the project as bpcourse/, next to setup.sh" >&2
  exit 1
fi
# The package without its dependencies (JupyterLab is the learners'), then the
# requirements of its "grader" extra, read from the package's own metadata.
"$VENV/bin/python" -m pip install --no-deps "$package"
requirements="$(mktemp)"
"$VENV/bin/python" - >"$requirements" <<'PY'
from importlib.metadata import requires

for requirement in requires("bpcourse") or []:
    name, _, marker = requirement.partition(";")
    if marker.strip().replace("'", '"') == 'extra == "grader"':
        print(name.strip())
PY
"$VENV/bin/python" -m pip install -r "$requirements"
rm -f "$requirements"
"$VENV/bin/bpcourse" grade --help >/dev/null

# bubblewrap: the grader's sandbox, where the container allows user namespaces.
apt-get install -y --no-install-recommends bubblewrap || true
# Gradescope's containers usually forbid namespaces; the grader then runs each
# learner's code under a user id of its own, which can read whatever every user
# may read. Keep the reference answers (the exercise registry), the grader's own
# modules and this autograder's sources from other users.
"$VENV/bin/python" - <<'PY'
import os
from bpcourse.grading.isolation import hidden_paths

for path in [*hidden_paths([]), "/autograder/source"]:
    if os.path.exists(path):
        os.chmod(path, os.stat(path).st_mode & ~0o077)
PY
