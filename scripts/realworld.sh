#!/usr/bin/env bash
# The oracle on real third-party apps (tests/realworld): wagtail, django-cms, allauth,
# oauth-toolkit, celery-beat/results, reversion, guardian, filer... 318 migrations.
# Usage: scripts/realworld.sh [5.2|6.1 [VENDOR ...]]  (default 5.2, all three vendors).
# Makes or updates .venv-realworld<series>/, then runs the given vendors (sqlite,
# postgresql, mariadb) side by side (each makes and drops its own databases) and writes
# a junit report per vendor into $REPORTS if set; no vendor after --venv-only (what
# scripts/test.sh does first, before it runs each vendor with BYHAND_REALWORLD_READY=1,
# which skips the venv step). The venv is made on the Python the series is tested with
# (5.2: 3.11, 6.1: 3.13), found by scripts/python.sh.
set -uo pipefail
series="${1:-5.2}"
shift || true
vendors=("$@")
[ ${#vendors[@]} = 0 ] && vendors=(sqlite postgresql mariadb)
[ "${vendors[*]}" = --venv-only ] && vendors=()
for vendor in "${vendors[@]}"; do
  case "$vendor" in
    sqlite | postgresql | mariadb) ;;
    *) echo "realworld.sh: unknown vendor '$vendor' (sqlite, postgresql, mariadb)" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-realworld${series/./}"
case "$series" in
  5.2) minor=3.11 ;;
  6.1) minor=3.13 ;;
  *) echo "realworld.sh: no requirements for Django '$series' (5.2 or 6.1)" >&2; exit 2 ;;
esac
if [ "${BYHAND_REALWORLD_READY:-}" != 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    interpreter="$(bash scripts/python.sh "$minor")" || exit 1
    "$interpreter" -m venv "$venv" || exit 1
  fi
  requirements="tests/realworld/requirements-django${series/./}"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements.txt" 1>&2 || exit 1
  # Apps whose newest release does not declare this Django (see the file): without resolution.
  if [ -f "$requirements-nodeps.txt" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$requirements-nodeps.txt" 1>&2 \
      || exit 1
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . 1>&2 || exit 1
fi

declare -A urls=(
  [sqlite]=""
  [postgresql]="postgres://postgres@127.0.0.1:5432/byhand_example"
  [mariadb]="mysql://root@127.0.0.1:3306/byhand_example"
)
logs="$(mktemp -d)"
pids=()
for vendor in "${vendors[@]}"; do
  report=()
  [ -n "${REPORTS:-}" ] && report=(--junitxml="$REPORTS/realworld-django${series}-${vendor}.xml")
  DATABASE_URL="${urls[$vendor]}" DJANGO_SETTINGS_MODULE=realworld.settings \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
    "${report[@]}" tests/realworld > "$logs/$vendor.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
for vendor in "${vendors[@]}"; do
  echo "=== real-world apps, Django $series, $vendor"
  cat "$logs/$vendor.log"
done
rm -rf "$logs"
exit $status
