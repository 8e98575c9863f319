#!/usr/bin/env bash
# The oracle on pulpcore (tests/realworld_pulp, see its README.md): PostgreSQL only, Django 5.2.
# Usage: scripts/realworld_pulp.sh [--venv-only]
# Makes or updates .venv-realworld-pulp/ (Python 3.11, found by scripts/python.sh) from
# tests/realworld_pulp/requirements.txt, then runs the test against the PostgreSQL server
# (it makes and drops its own databases there) and writes a junit report into $REPORTS if
# set. --venv-only stops after the venv; BYHAND_REALWORLD_READY=1 skips the venv step.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-realworld-pulp"
if [ "${BYHAND_REALWORLD_READY:-}" != 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    interpreter="$(bash scripts/python.sh 3.11)" || exit 1
    "$interpreter" -m venv "$venv" || exit 1
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/realworld_pulp/requirements.txt 1>&2 \
    || exit 1
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . 1>&2 || exit 1
fi
[ "${1:-}" = --venv-only ] && exit 0
report=()
[ -n "${REPORTS:-}" ] && report=(--junitxml="$REPORTS/realworld-pulpcore-postgresql.xml")
DATABASE_URL="postgres://postgres@127.0.0.1:5432/byhand_example" DJANGO_SETTINGS_MODULE=realworld_pulp.settings \
  exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "${report[@]}" \
  tests/realworld_pulp
