#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs bpcourse into a virtual environment of its own (/opt/bpcourse)
# from the wheel next to this file (bpcourse-*.whl) or, failing that, from a
# copy of the project in the folder bpcourse/ next to this file.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${BPCOURSE_VENV:-/opt/bpcourse}"

apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup.sh: bpcourse needs Python 3.10 or later; choose the Ubuntu 22.04 base image or newer" >&2
  exit 1
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip

shopt -s nullglob
wheels=("$SOURCE"/bpcourse-*.whl)
if [ "${#wheels[@]}" -eq 1 ]; then
  "$VENV/bin/python" -m pip install "${wheels[0]}"
elif [ "${#wheels[@]}" -gt 1 ]; then
  echo "setup.sh: several wheels next to setup.sh (${wheels[*]}); keep one" >&2
  exit 1
elif [ -f "$SOURCE/bpcourse/pyproject.toml" ]; then
  "$VENV/bin/python" -m pip install "$SOURCE/bpcourse"
else
  echo "setup.sh: put bpcourse-*.whl, or a copy of the project as bpcourse/, next to setup.sh" >&2
  exit 1
fi
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
