#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every fuzz target for SECONDS over a scratch copy of its corpus (the
# repository is never written).  Exits non-zero if any target crashes, leaks,
# times out or runs out of memory; its reproducer is kept in
# BUILD_DIR/fuzz-artifacts/ and printed in base64.
#
#   fuzz/run.sh BUILD_DIR [SECONDS]     (SECONDS defaults to 60 per target)
#
# BUILD_DIR is a build configured with CC=clang -DEVSHM_BUILD_FUZZ=ON
# -DEVSHM_SANITIZE=address,undefined (see fuzz/CMakeLists.txt).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 BUILD_DIR [SECONDS]" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
artifacts=$build/fuzz-artifacts

scratch=$(mktemp -d "${TMPDIR:-/tmp}/evshm-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
mkdir -p "$artifacts"

export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}print_stacktrace=1:halt_on_error=1"

failed=0
for name in ring proto region; do
	bin=$build/fuzz/fuzz_$name
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin not built" >&2
		exit 2
	fi
	rm -f "$artifacts/$name"-*
	mkdir -p "$scratch/$name"
	cp "$here/corpus/$name"/* "$scratch/$name/"
	echo "=== fuzz_$name: $secs s over $(ls "$scratch/$name" | wc -l) inputs"
	rc=0
	"$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
		"$scratch/$name" >"$scratch/$name.log" 2>&1 || rc=$?
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
		"$scratch/$name.log" || true
	if [ $rc -ne 0 ]; then
		failed=1
		echo "=== fuzz_$name FAILED (exit $rc); log tail:"
		tail -n 60 "$scratch/$name.log"
		for f in "$artifacts/$name"-*; do
			[ -f "$f" ] || continue
			echo "--- reproducer $f (base64):"
			base64 "$f"
		done
	fi
done
exit $failed
