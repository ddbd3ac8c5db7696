# Sourced by the cleanup tests of the shell suites (tests/tool/cleanup.sh,
# bridge/tests/cleanup.sh), after their lib.sh.
#
# expect_no_leftovers LIB ARG: a test of library LIB (its argument ARG)
# that fails while programs it started in the background run must end at
# once and leave none running: else what it left would keep CTest's pipe
# (its stdout, stderr) open, and CTest would wait for it until its timeout
# instead of reporting the failure.
expect_no_leftovers() {
	local start took out rc=0 p state
	step "a test that fails with programs in the background: its output ends with it"
	start=$SECONDS
	out=$(bash "$(dirname "${BASH_SOURCE[0]}")/fail_leaving.sh" "$1" "$2" \
		"$T/pids" 2>&1) || rc=$?
	took=$((SECONDS - start))
	echo "$out"
	[ "$rc" -eq 1 ] || fail "it exited $rc, expected 1"
	grep -q "on purpose" <<<"$out" || fail "it did not get to fail"
	[ "$(wc -l <"$T/pids")" -eq 3 ] || fail "it did not start its three programs"
	# Hang detection only: an honest run takes a fraction of a second.
	[ "$took" -lt 20 ] || fail "its output ended $took s after it started"
	for p in $(cat "$T/pids"); do
		state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$p/stat" 2>/dev/null) || true
		[ -z "$state" ] || [ "$state" = Z ] || fail "pid $p still runs"
	done
	echo "ok"
}
