#!/usr/bin/env bash
# The main job on the example project: write the runbook for every pending migration
# of a fresh SQLite database, print it, apply it with the sqlite3 CLI, show the result.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v sqlite3 >/dev/null || bash scripts/system.sh
python="$(bash scripts/venv.sh 5.2)"
cd example
rm -f db.sqlite3 db_archive.sqlite3 runbook.sql
"$python" manage.py byhand sql --manual-steps -o runbook.sql
cat runbook.sql
echo
echo "=== byhand inspect runbook.sql (the console script: no Django settings needed)"
env -u DJANGO_SETTINGS_MODULE "$(dirname "$python")/byhand" inspect runbook.sql
echo
echo "=== sqlite3 -bail db.sqlite3 < runbook.sql"
sqlite3 -bail db.sqlite3 < runbook.sql
echo "=== manage.py showmigrations shop (read from django_migrations)"
"$python" manage.py showmigrations shop
echo "=== the manual steps in runbook.sql are for the operator: run them on a host with the code."
