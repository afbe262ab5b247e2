#!/bin/sh
# Runs each C test binary (optionally through $TEST_RUNNER, e.g. qemu) and prints how long
# each took, then one overall "N passed, N failed" line. Exits non-zero if any failed.
passed=0
failed=0
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s)
    if $TEST_RUNNER "$t"; then
        passed=$((passed + 1))
        echo "-- $name: $(($(date +%s) - start)) s"
    else
        echo "FAILED: $name ($(($(date +%s) - start)) s)"
        failed=$((failed + 1))
    fi
done
echo "c-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
