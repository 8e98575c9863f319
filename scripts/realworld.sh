#!/usr/bin/env bash
# The oracle on real third-party apps (tests/realworld): wagtail, django-cms, allauth,
# oauth-toolkit, celery-beat/results, reversion, guardian, filer... 318 migrations.
# Usage: scripts/realworld.sh [4.2|5.2]  (default 5.2). Runs the three vendors side by
# side (each makes and drops its own databases) and writes a junit report per vendor
# into $REPORTS if set.
set -uo pipefail
series="${1:-5.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-realworld${series/./}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  -r "tests/realworld/requirements-django${series/./}.txt" 1>&2 || exit 1
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . 1>&2 || exit 1

declare -A urls=(
  [sqlite]=""
  [postgresql]="postgres://postgres@127.0.0.1:5432/byhand_example"
  [mariadb]="mysql://root@127.0.0.1:3306/byhand_example"
)
logs="$(mktemp -d)"
pids=()
for vendor in sqlite postgresql mariadb; do
  report=()
  [ -n "${REPORTS:-}" ] && report=(--junitxml="$REPORTS/realworld-django${series}-${vendor}.xml")
  DATABASE_URL="${urls[$vendor]}" DJANGO_SETTINGS_MODULE=realworld.settings \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
    "${report[@]}" tests/realworld > "$logs/$vendor.log" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1 2; do
  wait "${pids[$i]}" || status=1
done
for vendor in sqlite postgresql mariadb; do
  echo "=== real-world apps, Django $series, $vendor"
  cat "$logs/$vendor.log"
done
rm -rf "$logs"
exit $status
