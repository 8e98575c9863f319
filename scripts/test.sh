#!/usr/bin/env bash
# The whole test suite: Django 5.2 (Python 3.11), 6.0 (Python 3.12) and 6.1 (Python 3.13)
# x SQLite, PostgreSQL, MariaDB, real servers; the wheel as users install it
# (scripts/wheel.sh); then the oracle on real third-party apps (scripts/realworld.sh,
# Django 5.2).
# Usage: scripts/test.sh [pytest args...]   (BYHAND_SKIP_REALWORLD=1 leaves the real-world apps out)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/system.sh || exit 1

declare -A urls=(
  [sqlite]=""
  [postgresql]="postgres://postgres@127.0.0.1:5432/byhand_example"
  [mariadb]="mysql://root@127.0.0.1:3306/byhand_example"
)
vendors=(sqlite postgresql mariadb)
reports="$(mktemp -d)"
status=0
# The kill tests (tests/test_kill.py) exercise byhand apply, which has no Django in it:
# SIGKILL at every statement boundary on the 5.2 lanes, at every 40th on the 6.x lanes
# (the first point and a few others: the runbook differs little between series).
declare -A strides=([5.2]=1 [6.0]=40 [6.1]=40)
for series in 5.2 6.0 6.1; do
  python="$(bash scripts/venv.sh "$series")" || exit 1
  if [ "$series" = 5.2 ]; then
    echo "=== lint: ruff check, ruff format --check, mypy --strict"
    bin="$(dirname "$python")"
    "$bin/ruff" check src tests example && "$bin/ruff" format --check src tests example \
      && "$bin/mypy" src || status=1
  fi
  stride="${strides[$series]}"
  # The three vendors side by side (each test makes its own databases); logs printed in turn.
  pids=()
  for vendor in "${vendors[@]}"; do
    BYHAND_KILL_STRIDE="$stride" DATABASE_URL="${urls[$vendor]}" "$python" -m pytest -q -p no:cacheprovider \
      --junitxml="$reports/django${series}-${vendor}.xml" "$@" tests >"$reports/django${series}-${vendor}.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!vendors[@]}"; do
    wait "${pids[$i]}" || status=1
    echo "=== Django $series, ${vendors[$i]}"
    cat "$reports/django${series}-${vendors[$i]}.log"
  done
done
echo "=== the wheel: built, installed without Django, the console script (scripts/wheel.sh)"
wheel=ok
bash scripts/wheel.sh >"$reports/wheel.log" 2>&1 || { wheel=FAILED; status=1; }
grep -v '^WARNING: Location' "$reports/wheel.log"
if [ "${BYHAND_SKIP_REALWORLD:-}" != 1 ]; then
  echo "=== real-world apps (tests/realworld), Django 5.2, the three vendors side by side"
  REPORTS="$reports" bash scripts/realworld.sh 5.2 || status=1
fi
python3 - "$reports" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in totals}
    for key in totals:
        totals[key] += counts[key]
    print(f"{report.stem:24} {counts['tests']:4} tests, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped")
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
echo "wheel check: $wheel"
rm -rf "$reports"
exit $status
