#!/bin/sh
# Runs each C test binary (optionally through $TEST_RUNNER, e.g. qemu) and prints one
# overall "N passed, N failed" line. Exits non-zero if any binary failed.
passed=0
failed=0
for t in "$@"; do
    name=$(basename "$t")
    if $TEST_RUNNER "$t"; then
        passed=$((passed + 1))
    else
        echo "FAILED: $name"
        failed=$((failed + 1))
    fi
done
echo "c-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
