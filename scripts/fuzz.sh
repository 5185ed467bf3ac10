#!/usr/bin/env bash
# Fuzzes the native TOA parser with libFuzzer + ASan + UBSan for FUZZ_SECONDS (default 60).
# Builds build-fuzz/ with clang through CMakeLists.txt (TOA_FUZZ=ON), starts from a copy of
# fuzz/seeds/ (regenerated from the unit-test vectors), and exits non-zero on any crash, leak,
# timeout or broken invariant. Then, when llvm-cov is installed, prints the parser's source
# coverage over the corpus the run produced.
# Env: FUZZ_SECONDS (default 60), FUZZ_ARGS (extra libFuzzer flags), FUZZ_COVERAGE=0 to skip coverage.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
out=build-fuzz
corpus="$out/corpus"
artifacts="$out/artifacts"

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi

node scripts/fuzz-seeds.js fuzz/seeds

cmake -S . -B "$out" -DTOA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out" --target toa_parse_fuzz -j"$(nproc)" >/dev/null

rm -rf "$corpus" "$artifacts"
mkdir -p "$corpus" "$artifacts"
cp fuzz/seeds/*.bin "$corpus/"

echo "fuzz: running toa_parse_fuzz for ${seconds}s on $(ls "$corpus" | wc -l) seeds"
status=0
# shellcheck disable=SC2086
"$out/toa_parse_fuzz" "$corpus" \
  -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -dict=fuzz/toa.dict -use_value_profile=1 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} >"$out/fuzz.log" 2>&1 || status=$?

grep -E '^#[0-9]+.*(DONE|pulse)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out/fuzz.log" | tail -5 || true
findings=$(find "$artifacts" -type f | wc -l)
if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
  tail -60 "$out/fuzz.log" >&2
  echo "fuzz: FAILED (exit $status, $findings finding(s) in $artifacts/); reproduce with: $out/toa_parse_fuzz <file>" >&2
  exit 1
fi
echo "fuzz: clean, corpus grew to $(ls "$corpus" | wc -l) inputs"

# Source coverage of the parser over the corpus: a separate, uninstrumented-by-ASan build.
if [ "${FUZZ_COVERAGE:-1}" != "0" ] && command -v llvm-profdata >/dev/null && command -v llvm-cov >/dev/null; then
  clang++ -std=c++17 -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
    fuzz/toa_parse_fuzz.cc native/toa_parse.cc -o "$out/toa_parse_cov"
  LLVM_PROFILE_FILE="$out/cov.profraw" "$out/toa_parse_cov" -runs=0 "$corpus" >/dev/null 2>&1
  llvm-profdata merge -sparse "$out/cov.profraw" -o "$out/cov.profdata"
  echo "fuzz: coverage of native/toa_parse.cc over the corpus:"
  llvm-cov report "$out/toa_parse_cov" -instr-profile="$out/cov.profdata" native/toa_parse.cc \
    | sed -n '1,3p;/^TOTAL/p'
fi
