#!/usr/bin/env bash
# Runs the native-facing jest tests against an AddressSanitizer + UBSan build of the addon.
# Builds build-asan/ with cmake-js (CMakeLists.txt TOA_SANITIZE=ON, gcc), preloads gcc's ASan
# runtime into node (node itself is not instrumented, so the runtime must come first), and points
# lib/addon/binding.ts at the sanitized addon with NODE_TOA_ADDON. Fails on any sanitizer report.
# Leak detection is off: node does not free everything at exit.
# The tap's tests (test/netns/ack-table.test.ts) run here too. Their child processes inherit LD_PRELOAD,
# the sanitizer options and NODE_TOA_ADDON: the setpriv'd node loads the sanitized addon as well
# (a report there breaks the test's empty-stderr check), and python3, which injects packets on lo,
# runs unharmed under the preloaded runtime.
# Env: ASAN_TESTS to override the test files (default: test/unit/parse.test.ts test/unit/proxy-parse.test.ts
# test/loopback/socket*.test.ts test/netns/ack-table.test.ts test/netns/preload.test.ts, the last for the preload's bound
# reader, makeSynReader; test/loopback/proxy-peek.test.ts for the PROXY gate's socket reader;
# test/unit/udp-parse.test.ts, test/unit/uoa-parse.test.ts, test/loopback/udp.test.ts and test/netns/udp-uoa.test.ts for
# the UDP parsers and the UOA tap).
set -euo pipefail
cd "$(dirname "$0")/.."

out=build-asan
cxx="${CXX:-g++}"
runtime="$("$cxx" -print-file-name=libasan.so)"
if [ ! -e "$runtime" ]; then
  echo "asan-test: no ASan runtime for $cxx ($runtime)" >&2
  exit 2
fi

mkdir -p "$out"
npx cmake-js compile --out "$out" --config RelWithDebInfo --cxx "$cxx" --CDTOA_SANITIZE=ON >"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log" >&2; echo "asan-test: build failed" >&2; exit 1; }
addon="$(find "$out" -name node_toa.node -type f -print -quit)"
# grep reads all of ldd's output: with -q it could exit first, and pipefail would see ldd's SIGPIPE.
if [ -z "$addon" ] || ! ldd "$addon" | grep libasan >/dev/null; then
  echo "asan-test: $out has no ASan-instrumented node_toa.node" >&2
  exit 1
fi
addon="$(realpath "$addon")"

# Worker threads and child processes in the tests load dist/, which must honour NODE_TOA_ADDON too.
npm run build:ts >/dev/null 2>&1 || echo "asan-test: warning: npm run build:ts reported errors" >&2
grep -q NODE_TOA_ADDON dist/addon/binding.js || { echo "asan-test: dist/addon/binding.js ignores NODE_TOA_ADDON" >&2; exit 1; }

if [ -n "${ASAN_TESTS:-}" ]; then
  read -r -a tests <<<"$ASAN_TESTS"
else
  tests=(test/unit/parse.test.ts test/unit/proxy-parse.test.ts test/loopback/proxy-peek.test.ts test/unit/udp-parse.test.ts test/unit/uoa-parse.test.ts test/loopback/udp.test.ts test/netns/udp-uoa.test.ts)
  for f in test/loopback/socket*.test.ts test/netns/ack-table.test.ts test/netns/preload.test.ts; do [ -e "$f" ] && tests+=("$f"); done
fi

echo "asan-test: $addon with $(basename "$runtime") on ${tests[*]}"
log="$out/jest.log"
status=0
LD_PRELOAD="$runtime" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  NODE_TOA_ADDON="$addon" \
  npx jest --runInBand "${tests[@]}" 2>&1 | tee "$log" || status=$?

if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$log"; then
  echo "asan-test: FAILED: sanitizer report in $log" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "asan-test: FAILED: jest exited $status" >&2
  exit 1
fi
echo "asan-test: clean"
