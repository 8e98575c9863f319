#!/usr/bin/env bash
# Make sure what byhand's tests need from the system is there: the database CLIs
# (psql/pg_dump, mysql/mysqldump, sqlite3), the headers mysqlclient builds against,
# PgBouncer (the pooler tests start their own), pt-online-schema-change (percona-toolkit:
# an online runbook's copies on MariaDB), Chromium (review's HTML page is rendered
# headless), and running PostgreSQL and MariaDB servers. Installs/starts only what is missing.
set -euo pipefail

missing=()
command -v psql >/dev/null && command -v pg_dump >/dev/null || missing+=(postgresql-client)
command -v mysql >/dev/null && command -v mysqldump >/dev/null || missing+=(mariadb-client)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v pt-online-schema-change >/dev/null || missing+=(percona-toolkit)
command -v chromium >/dev/null || missing+=(chromium)
pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || missing+=(libmariadb-dev)
if ((${#missing[@]})); then
  echo "system.sh: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "system.sh: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "system.sh: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
if ! mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "system.sh: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "system.sh: PostgreSQL or MariaDB did not come up; the tests that need them will say so" >&2
