#!/usr/bin/env bash
# The oracle on real third-party apps (tests/realworld): wagtail, django-cms, allauth,
# oauth-toolkit, celery-beat/results, reversion, guardian, filer... 318 migrations.
# Usage: scripts/realworld.sh [4.2|5.2|6.1]  (default 5.2). Runs the three vendors side by
# side (each makes and drops its own databases) and writes a junit report per vendor
# into $REPORTS if set. Django 6.x needs Python 3.12+: the venv is made with $PYTHON if
# set, else python3.13 for 6.1 (python3.12 for 6.0), else python3.
set -uo pipefail
series="${1:-5.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-realworld${series/./}"
case "$series" in
  6.1) default_python=python3.13 ;;
  6.0) default_python=python3.12 ;;
  *) default_python=python3 ;;
esac
[ -x "$venv/bin/python" ] || "${PYTHON:-$default_python}" -m venv "$venv" || exit 1
requirements="tests/realworld/requirements-django${series/./}"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements.txt" 1>&2 || exit 1
# Apps whose newest release does not declare this Django (see the file): without resolution.
if [ -f "$requirements-nodeps.txt" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$requirements-nodeps.txt" 1>&2 || exit 1
fi
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
