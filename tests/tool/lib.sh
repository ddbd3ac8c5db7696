# Sourced by the tool tests: `bash test.sh /path/to/evshm`.
# Each test prints what it checks, fails with a message (exit 1), and cleans
# up its scratch directory and any process it started.
set -euo pipefail
E=${1:?usage: $0 /path/to/evshm}
SCALE=${EVSHM_TEST_SCALE:-1}
T=$(mktemp -d "${TMPDIR:-/tmp}/evshm-tool.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

# A name no other test or run uses.
unique_name() { echo "@evshm-tool-test-$$-$1"; }

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# expect_rc WANT CMD...: run CMD and check its exit status.
expect_rc() {
	local want=$1 rc=0; shift
	"$@" || rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want"
}

# wait_for COND_CMD... : poll (up to 20 s) until COND_CMD succeeds.
wait_for() {
	local i
	for ((i = 0; i < 400; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting for: $*"
}

# wait_rc PID: RC = the exit status of background job PID (bounded to 60 s).
RC=0
wait_rc() {
	local pid=$1 i rc=0
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; fail "process $pid hung"; }
	wait "$pid" || rc=$?
	RC=$rc
}

# listening NAME: is an abstract name bound (by a listener)?
listening() { grep -q " ${1/@/@}\$" /proc/net/unix; }

filesize() { stat -c %s "$1"; }
