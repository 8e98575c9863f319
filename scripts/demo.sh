#!/usr/bin/env bash
# The main job on the example project: write the runbook for every pending migration
# of a fresh SQLite database, print it, apply it with byhand apply, show the result.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v sqlite3 >/dev/null || bash scripts/system.sh
python="$(bash scripts/venv.sh 5.2)"
cd example
rm -f db.sqlite3 db_archive.sqlite3 runbook.sql db.sqlite3.byhand_journal.lock
"$python" manage.py byhand sql --manual-steps -o runbook.sql
cat runbook.sql
echo
echo "=== byhand inspect runbook.sql (the console script: no Django settings needed)"
env -u DJANGO_SETTINGS_MODULE "$(dirname "$python")/byhand" inspect runbook.sql
echo
byhand="$(dirname "$python")/byhand"
echo "=== byhand apply runbook.sql --database-url sqlite:///db.sqlite3 (stops before the first manual step)"
status=0
env -u DJANGO_SETTINGS_MODULE "$byhand" apply runbook.sql --database-url sqlite:///db.sqlite3 || status=$?
[ "$status" = 4 ] || { echo "expected exit 4 (manual step), got $status"; exit 1; }
echo
echo "=== nobody needs the data steps on this empty database: go past them (journaled)"
env -u DJANGO_SETTINGS_MODULE "$byhand" apply runbook.sql --database-url sqlite:///db.sqlite3 --skip-manual-steps
echo
echo "=== byhand status runbook.sql"
env -u DJANGO_SETTINGS_MODULE "$byhand" status runbook.sql --database-url sqlite:///db.sqlite3
echo "=== manage.py showmigrations shop (read from django_migrations)"
"$python" manage.py showmigrations shop
