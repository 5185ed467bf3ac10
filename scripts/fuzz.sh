#!/usr/bin/env bash
# Fuzzes the native code that reads untrusted bytes with libFuzzer + ASan + UBSan: the TOA parser
# (fuzz/toa_parse_fuzz.cc), the ACK tap's table (fuzz/tap_table_fuzz.cc), the PROXY protocol
# parser (fuzz/proxy_parse_fuzz.cc), the UDP datagram header decision over SPP and PROXY v2
# (fuzz/dgram_header_fuzz.cc), DPVS's UOA packet parser (fuzz/uoa_parse_fuzz.cc) and the reader of
# the sock_ops program's records (fuzz/sockops_parse_fuzz.cc), one after the other, sharing
# FUZZ_SECONDS (default 60) in sixths. Builds build-fuzz/ with clang through CMakeLists.txt (TOA_FUZZ=ON), starts each from a
# copy of its seeds (regenerated: the parsers' from their unit-test vectors, the table's from
# scripted handshakes), and exits non-zero on any crash, leak, timeout or broken invariant of any. Then, when llvm-cov is installed, prints each target's
# source coverage over the corpus its run produced.
# Env: FUZZ_SECONDS (default 60), FUZZ_ARGS (extra libFuzzer flags, for both), FUZZ_COVERAGE=0 to
# skip coverage.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
# A sixth each (the TOA parser takes the remainder), at least a second each (libFuzzer reads 0 as
# "no limit").
sixth=$((seconds / 6 > 0 ? seconds / 6 : 1))
parse_seconds=$((seconds - 5 * sixth > 0 ? seconds - 5 * sixth : 1))
table_seconds=$sixth
proxy_seconds=$sixth
dgram_seconds=$sixth
uoa_seconds=$sixth
sockops_seconds=$sixth
out=build-fuzz

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
node scripts/fuzz-seeds.js fuzz/seeds
node scripts/fuzz-table-seeds.js fuzz/tap_table_seeds
node scripts/fuzz-proxy-seeds.js fuzz/proxy_seeds
node scripts/fuzz-dgram-seeds.js fuzz/dgram_seeds fuzz/uoa_seeds
node scripts/fuzz-sockops-seeds.js fuzz/sockops_seeds

cmake -S . -B "$out" -DTOA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out" --target toa_parse_fuzz tap_table_fuzz proxy_parse_fuzz dgram_header_fuzz uoa_parse_fuzz sockops_parse_fuzz -j"$(nproc)" >/dev/null

# run TARGET SEEDS DICT SECONDS: fuzzes into $out/runs/TARGET/{corpus,artifacts,fuzz.log}; returns 1 on a
# finding.
run() {
  local target=$1 seeds=$2 dict=$3 time=$4
  local dir="$out/runs/$target"
  rm -rf "$dir/corpus" "$dir/artifacts"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$seeds"/*.bin "$dir/corpus/"
  echo "fuzz: running $target for ${time}s on $(ls "$dir/corpus" | wc -l) seeds"
  local status=0
  # shellcheck disable=SC2086
  "$out/$target" "$dir/corpus" \
    -max_total_time="$time" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -dict="$dict" -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" ${FUZZ_ARGS:-} >"$dir/fuzz.log" 2>&1 || status=$?
  grep -E '^#[0-9]+.*(DONE|pulse)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$dir/fuzz.log" | tail -5 || true
  local findings
  findings=$(find "$dir/artifacts" -type f | wc -l)
  if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
    tail -60 "$dir/fuzz.log" >&2
    echo "fuzz: $target FAILED (exit $status, $findings finding(s) in $dir/artifacts/); reproduce with: $out/$target <file>" >&2
    return 1
  fi
  echo "fuzz: $target clean, corpus grew to $(ls "$dir/corpus" | wc -l) inputs"
}

# coverage TARGET SOURCE...: source coverage of the first SOURCE over the target's corpus, from a
# separate build without ASan.
coverage() {
  local target=$1 dir="$out/runs/$1"
  shift
  clang++ -std=c++17 -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
    "fuzz/$target.cc" "$@" -o "$dir/cov"
  LLVM_PROFILE_FILE="$dir/cov.profraw" "$dir/cov" -runs=0 "$dir/corpus" >/dev/null 2>&1
  llvm-profdata merge -sparse "$dir/cov.profraw" -o "$dir/cov.profdata"
  echo "fuzz: coverage of $1 over the $target corpus:"
  llvm-cov report "$dir/cov" -instr-profile="$dir/cov.profdata" "$1" | sed -n '1,3p;/^TOTAL/p'
}

failed=0
run toa_parse_fuzz fuzz/seeds fuzz/toa.dict "$parse_seconds" || failed=1
run tap_table_fuzz fuzz/tap_table_seeds fuzz/tap_table.dict "$table_seconds" || failed=1
run proxy_parse_fuzz fuzz/proxy_seeds fuzz/proxy.dict "$proxy_seconds" || failed=1
run dgram_header_fuzz fuzz/dgram_seeds fuzz/dgram.dict "$dgram_seconds" || failed=1
run uoa_parse_fuzz fuzz/uoa_seeds fuzz/uoa.dict "$uoa_seconds" || failed=1
run sockops_parse_fuzz fuzz/sockops_seeds fuzz/sockops.dict "$sockops_seconds" || failed=1
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED" >&2
  exit 1
fi

if [ "${FUZZ_COVERAGE:-1}" != "0" ] && command -v llvm-profdata >/dev/null && command -v llvm-cov >/dev/null; then
  coverage toa_parse_fuzz native/toa_parse.cc
  coverage tap_table_fuzz native/tap_table.cc native/toa_parse.cc
  coverage proxy_parse_fuzz native/proxy_parse.cc
  coverage dgram_header_fuzz native/dgram_header.cc native/spp_parse.cc native/proxy_parse.cc
  coverage uoa_parse_fuzz native/uoa_parse.cc
  coverage sockops_parse_fuzz native/sockops_parse.cc native/toa_parse.cc
fi
