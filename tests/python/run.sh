#!/bin/sh
# Runs the Python package's tests (tests/python/test_*.py) under pytest and prints pytest's
# report, then "N passed, N failed" for tests/run.sh (skipped tests are listed, not counted).
# Installed by the Makefile as BUILD/tests/test_python, which calls:
#   sh tests/python/run.sh BUILD PYTHON SRCDIR
# A missing pytest, NumPy or extension counts as a failure: make test installs the first two
# (python3-pytest, python3-numpy) and builds the third.
set -u
build=${1:?usage: run.sh BUILD [PYTHON] [SRCDIR]}
python=${2:-/usr/bin/python3}
src=${3:-.}
fail() {
    echo "FAIL: $1"
    echo "0 passed, 1 failed"
    exit 1
}
"$python" -c 'import pytest' 2>/dev/null ||
    fail "$python cannot import pytest (Debian: apt-get install python3-pytest)"
"$python" -c 'import numpy' 2>/dev/null ||
    fail "$python cannot import numpy (Debian: apt-get install python3-numpy)"
ext=$(ls "$build"/python/attnscale/_ext*.so 2>/dev/null | head -n 1)
[ -n "$ext" ] || fail "the extension is not built in $build/python/attnscale (make python)"
# A sanitizer build (make check): the runtime must be loaded before the interpreter.
preload=""
for lib in asan ubsan; do
    if readelf -d "$ext" 2>/dev/null | grep -q "lib$lib"; then
        path=$(${CC:-cc} -print-file-name="lib$lib.so")
        preload="$preload $path"
    fi
done
xml=$(mktemp)
trap 'rm -f "$xml"' EXIT
# Python frees little at exit by design: leak checks off (the C tests keep them).
LD_PRELOAD="${preload# }" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    ATS_PY_SANITIZED=$([ -n "$preload" ] && echo 1 || echo 0) PYTHONPATH="$build/python" ATS_BUILD="$build" PYTHONDONTWRITEBYTECODE=1 \
    "$python" -m pytest -q -rs -p no:cacheprovider --junitxml="$xml" "$src/tests/python"
rc=$?
counts=$("$python" - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(n - failed - skipped, failed, skipped)
PY
)
set -- $counts
passed=$1 failed=$2 skipped=$3
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "FAIL: pytest exited with status $rc"
    failed=1
fi
[ "$skipped" -gt 0 ] && echo "python: $skipped skipped (see the SKIPPED lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
