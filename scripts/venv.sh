#!/usr/bin/env bash
# Usage: scripts/venv.sh DJANGO_SERIES  (5.2, 6.0 or 6.1) -> prints the venv's python.
# Creates .venv-django<series>/ with byhand (editable), Django, both drivers and pytest,
# on the Python that series is tested with: 5.2 on 3.11, 6.0 on 3.12, 6.1 on 3.13
# (Django 6.x needs Python 3.12+), found by scripts/python.sh.
set -euo pipefail
series="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
case "$series" in
  5.2) minor=3.11 ;;
  6.0) minor=3.12 ;;
  6.1) minor=3.13 ;;
  *) echo "venv.sh: unsupported Django series '$series' (5.2, 6.0 or 6.1)" >&2; exit 2 ;;
esac
venv="$root/.venv-django${series/./}"
if [ ! -x "$venv/bin/python" ]; then
  interpreter="$(bash "$root/scripts/python.sh" "$minor")"
  "$interpreter" -m venv "$venv" >&2
fi
# pip runs again only when pyproject.toml changed since it last ran (byhand is editable:
# source changes need no install), so that lanes already running from the venv are not
# disturbed by a reinstall.
stamp="$venv/.installed-from"
wanted="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1) django~=${series}.0"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -e "$root[postgresql,mysql,test,lint]" "django~=${series}.0" 1>&2
  echo "$wanted" >"$stamp"
fi
echo "$venv/bin/python"
