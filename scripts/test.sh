#!/usr/bin/env bash
# The whole test suite: Django 5.2 (Python 3.11), 6.0 (Python 3.12) and 6.1 (Python 3.13)
# x SQLite, PostgreSQL, MariaDB, real servers; the oracle on real third-party apps
# (scripts/realworld.sh, Django 5.2 and 6.1; scripts/realworld_pulp.sh, pulpcore on PostgreSQL);
# the wheel as users install it (scripts/wheel.sh).
# Usage: scripts/test.sh [pytest args...]   (BYHAND_SKIP_REALWORLD=1 leaves the real-world apps out)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/system.sh || exit 1
started=$SECONDS

declare -A urls=(
  [sqlite]=""
  [postgresql]="postgres://postgres@127.0.0.1:5432/byhand_example"
  [mariadb]="mysql://root@127.0.0.1:3306/byhand_example"
)
reports="$(mktemp -d)"
status=0
# The kill tests (tests/test_kill.py) exercise byhand apply, which has no Django in it.
# On the 5.2 lanes: one database SIGKILLed at every statement boundary in turn (each run
# resuming the killed one), and every 10th point killed alone from an empty database and
# resumed to the end. On the 6.x lanes, where the runbook differs little: every 40th
# point alone (the first and a few others), no chain.
declare -A strides=([5.2]=10 [6.0]=40 [6.1]=40)
declare -A chains=([5.2]=1 [6.0]=0 [6.1]=0)
declare -A pythons=()
for series in 5.2 6.0 6.1; do
  pythons[$series]="$(bash scripts/venv.sh "$series")" || exit 1
done
# Byte-code for byhand, the example project and the tests, once per interpreter: where
# PYTHONDONTWRITEBYTECODE is set (it is on these machines), each of the ~300 byhand and
# manage.py processes a lane starts would otherwise compile them again (0.1 s each).
for series in 5.2 6.0 6.1; do
  "${pythons[$series]}" -m compileall -q src example tests >/dev/null || exit 1
done
echo "=== lint: ruff check, ruff format --check, mypy --strict (venvs ready after $((SECONDS - started)) s)"
bin="$(dirname "${pythons[5.2]}")"
"$bin/ruff" check src tests example && "$bin/ruff" format --check src tests example \
  && "$bin/mypy" src || status=1
slots="${BYHAND_JOBS:-3}"
# Nine lanes, the real-world apps on each vendor with Django 5.2 and 6.1, and the wheel:
# $slots jobs at a time (BYHAND_JOBS, default 3)
# (each test makes its own databases), the longest first, so that a slot freed by a
# short job takes the next one instead of waiting for the slowest lane of its series.
# Each job's log is printed when it ends, with its 8 slowest tests (what to make faster next).
jobs=()
if [ "${BYHAND_SKIP_REALWORLD:-}" != 1 ]; then
  bash scripts/realworld.sh 5.2 --venv-only || exit 1
  bash scripts/realworld.sh 6.1 --venv-only || exit 1
  bash scripts/realworld_pulp.sh --venv-only || exit 1
  jobs+=(realworld5.2:mariadb realworld6.1:mariadb)
fi
jobs+=(5.2:postgresql 5.2:mariadb)
[ "${BYHAND_SKIP_REALWORLD:-}" != 1 ] \
  && jobs+=(realworld5.2:postgresql realworld6.1:postgresql realworld5.2:sqlite realworld6.1:sqlite pulpcore:postgresql)
jobs+=(6.0:postgresql 6.1:postgresql 6.0:mariadb 6.1:mariadb 5.2:sqlite 6.0:sqlite 6.1:sqlite wheel)
declare -A running=()
failed_jobs=()
finish_one() {
  local pid job rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  job="${running[$pid]}"
  unset "running[$pid]"
  ((rc == 0)) || { status=1; failed_jobs+=("$job"); }
  case "$job" in
    wheel) echo "=== the wheel: built, installed without Django, the console script (scripts/wheel.sh)" ;;
    realworld*) local series="${job%%:*}" && echo "=== real-world apps (tests/realworld), Django ${series#realworld}, ${job#*:}" ;;
    pulpcore:*) echo "=== real-world pulpcore (tests/realworld_pulp), Django 5.2, postgresql" ;;
    *) echo "=== Django ${job%%:*}, ${job#*:}" ;;
  esac
  grep -v '^WARNING: Location' "$reports/${job/:/-}.log"
}
for job in "${jobs[@]}"; do
  ((${#running[@]} < slots)) || finish_one
  series="${job%%:*}" vendor="${job#*:}"
  case "$job" in
    wheel) bash scripts/wheel.sh "${pythons[5.2]}" ;;
    realworld*) BYHAND_REALWORLD_READY=1 REPORTS="$reports" bash scripts/realworld.sh "${series#realworld}" "$vendor" ;;
    pulpcore:*) BYHAND_REALWORLD_READY=1 REPORTS="$reports" bash scripts/realworld_pulp.sh ;;
    *) BYHAND_KILL_STRIDE="${strides[$series]}" BYHAND_KILL_CHAIN="${chains[$series]}" DATABASE_URL="${urls[$vendor]}" "${pythons[$series]}" -m pytest -q \
      -p no:cacheprovider --durations=8 --junitxml="$reports/django${series}-${vendor}.xml" "$@" tests ;;
  esac >"$reports/${job/:/-}.log" 2>&1 &
  running[$!]="$job"
done
while ((${#running[@]})); do finish_one; done
python3 - "$reports" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in totals}
    for key in totals:
        totals[key] += counts[key]
    print(f"{report.stem:32} {counts['tests']:4} tests, {counts['failures'] + counts['errors']} failed, "
          f"{counts['skipped']} skipped, {float(suite.get('time', 0)):4.0f} s")
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
echo "failed: ${failed_jobs[*]:-nothing}; wall time $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
rm -rf "$reports"
exit $status
