#!/usr/bin/env bash
# scripts/asan-specs.sh LIBASAN COMMAND... — runs the busted suite with LIBASAN preloaded (make
# asan; only COMMAND gets it, not this script's own tools) and passes its exit status on, with one exception: LeakSanitizer's own stop-the-world tracer sometimes crashes
# while the process exits ("Tracer caught signal 11 ... LeakSanitizer has encountered a fatal
# error", google/sanitizers#1353). That is the checker failing, not a test or a leak, and it also
# loses busted's buffered summary; so then, and only then, the whole suite runs once more and its
# result is the result. A leak report, a sanitizer error or a failed test is never retried.
set -o pipefail
preload=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
LD_PRELOAD=$preload "$@" 2>&1 | tee "$log"
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'Tracer caught signal' "$log" &&
  grep -q 'LeakSanitizer has encountered a fatal error' "$log" &&
  ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer: detected)|runtime error:' "$log"; then
  echo "asan-specs: LeakSanitizer's tracer crashed at exit (its own fault, not a leak or a test);"
  echo "asan-specs: the whole suite runs once more and that run decides"
  LD_PRELOAD=$preload "$@"
  rc=$?
fi
exit "$rc"
