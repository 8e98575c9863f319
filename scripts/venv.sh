#!/usr/bin/env bash
# Usage: scripts/venv.sh DJANGO_SERIES  (4.2 or 5.2) -> prints the venv's python.
# Creates .venv-django<series>/ with byhand (editable), Django, both drivers and pytest.
set -euo pipefail
series="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-django${series/./}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  -e "$root[postgresql,mysql,test,lint]" "django~=${series}.0" 1>&2
echo "$venv/bin/python"
