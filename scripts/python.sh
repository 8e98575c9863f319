#!/usr/bin/env bash
# Usage: scripts/python.sh MINOR  (3.10 ... 3.13) -> prints the path of a Python of that
# minor version: python<MINOR> from PATH if it runs, else the newest pyenv-installed
# <MINOR>.x (pyenv's shims only run the global version: with 3.11 global, `python3.13`
# is "command not found" although 3.13.0 is installed).
set -euo pipefail
minor="$1"
if path="$(command -v "python$minor")" && "$path" -c 'import sys' 2>/dev/null; then
  echo "$path"
  exit 0
fi
if command -v pyenv >/dev/null && version="$(pyenv latest "$minor" 2>/dev/null)" \
  && [ -x "$(pyenv root)/versions/$version/bin/python$minor" ]; then
  echo "$(pyenv root)/versions/$version/bin/python$minor"
  exit 0
fi
echo "python.sh: no Python $minor here (pyenv install $minor, or put python$minor on PATH)" >&2
exit 1
