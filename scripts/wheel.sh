#!/usr/bin/env bash
# The package as users install it: `python -m build` makes an sdist and, from it, a
# wheel; the wheel goes into a fresh virtualenv on the oldest Python byhand claims
# (3.10) with a driver and WITHOUT Django; there the console script must give its
# version and inspect, apply, review and report the status of a runbook that the example
# project wrote (on the planning side, with the Django 5.2 venv).
# Then the same wheel in a second fresh virtualenv with PyMySQL as its only driver (nothing
# compiled, no Django, no mysqlclient) applies the example's MariaDB runbook to MariaDB
# (127.0.0.1:3306, root), as on a production host without a compiler.
# Usage: scripts/wheel.sh [PLANNING_PYTHON]   (about 40 s; scripts/test.sh runs it with the
# 5.2 venv's python, which it does not touch then; without it: scripts/venv.sh 5.2)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${1:-$(bash scripts/venv.sh 5.2)}"
work="$(mktemp -d)"
mariadb="mysql://root@127.0.0.1:3306"
databases="byhand_wheel_$$_planned byhand_wheel_$$_applied"
drop_databases() {
  for database in $databases; do
    mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS \`$database\`" 2>/dev/null || true
  done
}
trap 'rm -rf "$work"; drop_databases' EXIT
version="$("$python" -c 'import byhand; print(byhand.__version__)')"

echo "=== python -m build: sdist, then the wheel from the sdist"
"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel="$(ls "$work/dist"/byhand-"$version"-py3-none-any.whl)"
ls "$work/dist"
"$python" - "$wheel" "$version" <<'PY'
import sys, zipfile
from email.parser import Parser

wheel, version = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
meta = Parser().parsestr(zipfile.ZipFile(wheel).read(f"byhand-{version}.dist-info/METADATA").decode())
problems = []
if meta["Version"] != version:
    problems.append(f"metadata version {meta['Version']!r}, byhand.__version__ {version!r}")
if meta["License-Expression"] != "BSD-3-Clause":
    problems.append(f"License-Expression {meta['License-Expression']!r}")
if f"byhand-{version}.dist-info/licenses/LICENSE" not in names:
    problems.append("no LICENSE in the wheel")
if "byhand/py.typed" not in names:
    problems.append("no py.typed in the wheel")
if "django>=5.2; extra == 'django'" not in meta.get_all("Requires-Dist"):
    problems.append(f"Requires-Dist {meta.get_all('Requires-Dist')}")
if problems:
    sys.exit("wheel.sh: " + "; ".join(problems))
print(f"metadata: {meta['Name']} {meta['Version']}, {meta['License-Expression']}, LICENSE, py.typed")
PY

echo "=== a runbook from the example project (planning side, Django 5.2)"
DATABASE_URL="sqlite:///$work/planned.sqlite3" "$python" example/manage.py byhand sql --manual-steps \
  -o "$work/runbook.sql" >/dev/null

echo "=== a fresh virtualenv on Python 3.10: the wheel with a driver (psycopg), no Django"
"$(bash scripts/python.sh 3.10)" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel[postgresql]" 2>&1 \
  | grep -v '^WARNING: Location' || true
bin="$work/venv/bin"
if "$bin/python" -c 'import django' 2>/dev/null; then
  echo "wheel.sh: Django is importable in the operating venv" >&2
  exit 1
fi
"$bin/python" -c 'import psycopg' || exit 1
cd "$work"
got="$(env -u DJANGO_SETTINGS_MODULE "$bin/byhand" --version)"
echo "$got"
[ "$got" = "byhand $version" ] || { echo "wheel.sh: expected 'byhand $version'" >&2; exit 1; }
env -u DJANGO_SETTINGS_MODULE "$bin/byhand" inspect runbook.sql >inspect.log || { cat inspect.log; exit 1; }
head -n 3 inspect.log
env -u DJANGO_SETTINGS_MODULE "$bin/byhand" apply runbook.sql --database-url sqlite:///planned.sqlite3 \
  --skip-manual-steps >apply.log 2>&1 || { cat apply.log; exit 1; }
tail -n 1 apply.log
env -u DJANGO_SETTINGS_MODULE "$bin/byhand" status runbook.sql --database-url sqlite:///planned.sqlite3 \
  >status.log 2>&1 || { cat status.log; exit 1; }
grep -q pending status.log && { cat status.log; echo "wheel.sh: migrations still pending after apply" >&2; exit 1; }
head -n 2 status.log
env -u DJANGO_SETTINGS_MODULE "$bin/byhand" review runbook.sql --database-url sqlite:///planned.sqlite3 \
  >review.log 2>&1 || { cat review.log; exit 1; }
grep -q "shop.0001_initial  (applied" review.log || { cat review.log; echo "wheel.sh: review says no applied" >&2; exit 1; }
sed -n 6p review.log

echo "=== a fresh virtualenv on Python 3.10: the wheel with PyMySQL only, no Django, on MariaDB"
cd "$root"
for database in $databases; do
  mysql -h 127.0.0.1 -u root -e "CREATE DATABASE \`$database\`"
done
DATABASE_URL="$mariadb/byhand_wheel_$$_planned" "$python" example/manage.py byhand sql --manual-steps \
  -o "$work/mariadb.sql" >/dev/null
"$(bash scripts/python.sh 3.10)" -m venv "$work/venv-pymysql"
"$work/venv-pymysql/bin/python" -m pip install -q --disable-pip-version-check "$wheel[pymysql]" 2>&1 \
  | grep -v '^WARNING: Location' || true
bin="$work/venv-pymysql/bin"
for module in django MySQLdb; do
  if "$bin/python" -c "import $module" 2>/dev/null; then
    echo "wheel.sh: $module is importable in the PyMySQL-only venv" >&2
    exit 1
  fi
done
cd "$work"
url="$mariadb/byhand_wheel_$$_applied"
env -u DJANGO_SETTINGS_MODULE -u BYHAND_MYSQL_DRIVER "$bin/byhand" apply mariadb.sql --database-url "$url" \
  --skip-manual-steps >apply-pymysql.log 2>&1 || { cat apply-pymysql.log; exit 1; }
grep -q ', driver PyMySQL ' apply-pymysql.log || { cat apply-pymysql.log; echo "wheel.sh: PyMySQL not named" >&2; exit 1; }
sed -n 2p apply-pymysql.log
tail -n 1 apply-pymysql.log
env -u DJANGO_SETTINGS_MODULE "$bin/byhand" status mariadb.sql --database-url "$url" \
  >status-pymysql.log 2>&1 || { cat status-pymysql.log; exit 1; }
grep -q pending status-pymysql.log && { cat status-pymysql.log; echo "wheel.sh: migrations still pending after apply" >&2; exit 1; }
head -n 2 status-pymysql.log
env -u DJANGO_SETTINGS_MODULE "$bin/byhand" review mariadb.sql --database-url "$url" --json \
  >review-pymysql.json 2>review-pymysql.log || { cat review-pymysql.log; exit 1; }
"$bin/python" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert all(s["applied"] for s in d["statements"]), d' \
  review-pymysql.json || { echo "wheel.sh: review of the applied MariaDB runbook" >&2; exit 1; }
echo "wheel.sh: ok"
