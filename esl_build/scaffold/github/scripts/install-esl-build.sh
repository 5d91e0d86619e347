#!/usr/bin/env bash
# Install the esl-build that requirements.txt names (and anything else listed there).
# Stops with an error while requirements.txt names no esl-build: esl-build is not on a public
# package index, so only you can say where CI gets it (see README.md, "Set up CI").
#
# Environment: PYTHON (default python3).
set -euo pipefail
cd "$(git rev-parse --show-toplevel 2>/dev/null || pwd)"

requirements=requirements.txt
if [ ! -f "$requirements" ] || ! grep -Eiq '^[[:space:]]*esl[-_.]build([^-_.a-z0-9]|$)' "$requirements"; then
  echo "::error file=$requirements::$requirements names no esl-build to install. Add one pinned line, \
e.g. 'esl-build @ git+https://github.com/OWNER/esl-build@v0.1.0' (the comments in the file list \
the forms), commit it and push again." >&2
  exit 1
fi
"${PYTHON:-python3}" -m pip install --quiet -r "$requirements"
