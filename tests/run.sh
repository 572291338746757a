#!/bin/sh
# Runs every test executable in $1/tests and the CLI tests, then prints the total
# "N passed, N failed" as the last line; exits non-zero on any failure.
# Each program prints its own "N passed, N failed" line; one that dies without it counts as
# one failure.
set -u
build=${1:-build}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    start=$(date +%s)
    ATS_TEST_QUIET=${ATS_TEST_QUIET:-1} ATS_BUILD="$build" "$t" >"$log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    cat "$log"
    if [ -z "$summary" ]; then
        echo "FAIL: $name exited with status $rc and no summary"
        failed=$((failed + 1))
        continue
    fi
    p=${summary%% passed*}
    f=${summary#*, }
    f=${f%% failed*}
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL: $name exited with status $rc"
        failed=$((failed + 1))
    fi
    echo "== $name: $summary ($(( $(date +%s) - start )) s)"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
