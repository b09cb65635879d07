#!/usr/bin/env bash
# Runs the whole interop suite against `nbdkit file` and checks the outcome case by case:
# the cases listed in nbdkit-differences.txt must fail (or skip) there, and every other case
# must pass. This shows the suite can fail, and that its shared expectations are ones a
# mature NBD server meets.
here=$(cd "$(dirname "$0")" && pwd)
INTEROP_SERVER=nbdkit
. "$here/../lib/interop.sh"
interop_init

results="$T/results"
: >"$results"
for script in "$here"/test_*.sh "$here"/test_*.py; do
  name=$(basename "$script")
  [ "$name" = "$(basename "$0")" ] && continue
  echo "# running $name against nbdkit"
  INTEROP_SERVER=nbdkit INTEROP_RESULTS="$results" timeout --kill-after=10 500 "$script" \
    >"$T/${name%.*}.log" 2>&1
  echo "#   exit $?; $(grep -c '^ok' "$T/${name%.*}.log") ok, $(grep -c '^not ok' "$T/${name%.*}.log") not ok"
done

# expected_result SCRIPT CASE: fail/skip if listed, pass otherwise.
expected_result() {
  awk -v s="$1" -v c="$2" '!/^#/ && $1 == s && $2 == c { print $3; found = 1 } END { if (!found) print "pass" }' \
    "$here/nbdkit-differences.txt"
}

check_case() {  # the body of one generated case
  local script=$1 name=$2 want got
  want=$(expected_result "$script" "$name")
  got=$(awk -v s="$script" -v c="$name" '$2 == s && $3 == c { print $1 }' "$results")
  # A shared case skipped for lack of something on this machine (/dev/fuse…) proves nothing.
  [ "$got" = skip ] && [ "$want" = pass ] && skip "$script $name skipped itself against nbdkit"
  if [ "$got" != "$want" ]; then
    echo "--- output of $script against nbdkit:" >&2
    cat "$T/$script.log" >&2
    fail "$script $name against nbdkit: expected '$want', got '${got:-no result}'"
  fi
  if [ "$want" != pass ]; then
    echo "# $script $name: $want as documented: $(awk -v s="$script" -v c="$name" \
      '$1 == s && $2 == c { $1 = $2 = $3 = ""; sub(/^ +/, ""); print }' "$here/nbdkit-differences.txt")"
  fi
}

[ -s "$results" ] || fail "the suite reported no case at all"
# Every documented difference must still exist as a case, or the list has gone stale.
while read -r script name _; do
  [ -z "$script" ] || [[ $script == \#* ]] && continue
  grep -q " $script $name\$" "$results" ||
    { echo "not ok - nbdkit-differences.txt names $script $name, which no longer ran"; _failed=$((_failed + 1)); }
done <"$here/nbdkit-differences.txt"

_check_current() { check_case "$_current_script" "$_current_name"; }
while read -r _ _current_script _current_name; do
  run_case "$_current_script.$_current_name" _check_current
done < <(sort -u -k2,3 "$results")
interop_finish
