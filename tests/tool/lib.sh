# Sourced by the tool tests: `bash test.sh /path/to/evshm`.
# Each test prints what it checks, fails with a message (exit 1), and cleans
# up its scratch directory and any process it started.
set -euo pipefail
E=${1:?usage: $0 /path/to/evshm}
SCALE=${EVSHM_TEST_SCALE:-1}
T=$(mktemp -d "${TMPDIR:-/tmp}/evshm-tool.XXXXXX")
PIDS=()

. "$(dirname "${BASH_SOURCE[0]}")/../descendants.sh"

# At exit, whatever this script started and still runs: what is in PIDS,
# and any other background job or what a subshell started.  A process left
# behind after a failure would keep CTest's pipe (our stdout, stderr) open,
# and CTest would wait for it until its timeout.
cleanup() {
	local p
	disown -a  # no "Killed" notices
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in $(descendants $$); do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

# Reliable topics that are to drop nobody get `pub --stall-timeout 30`: the
# default (1 s) can drop an honest subscriber a loaded machine did not run.

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
	local end=$((SECONDS + 20))
	while ((SECONDS < end)); do
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

# --- evshm ps ------------------------------------------------------------
# The ps tests read its JSON with jq (Debian: jq); without it they skip.
need_jq() {
	command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
}

# ps_json [ARGS...]: one sample of `evshm ps --json ARGS` into $T/ps.json,
# bounded in time; it must exit 0 and print one line (one JSON object:
# ps_expect then parses it).
ps_json() {
	local rc=0
	timeout 10 "$E" ps --json "$@" >"$T/ps.json" || rc=$?
	[ "$rc" -eq 0 ] || fail "evshm ps --json $* exited $rc"
	[ "$(wc -l <"$T/ps.json")" -eq 1 ] || fail "evshm ps --json $* printed not one line"
}

# ps_expect [--arg NAME VALUE | --argjson NAME VALUE]... -- 'WHAT::FILTER'...
# Every jq FILTER must be true of $T/ps.json ($NAME: the values given);
# the first that is not fails the test with its WHAT.  One jq run for all
# (jq takes a good part of a second to start on a busy machine).
ps_expect() {
	local args=() prog="" whats=() c bad
	while [ "$1" != "--" ]; do args+=("$1" "$2" "$3"); shift 3; done
	shift
	for c in "$@"; do
		whats+=("${c%%::*}")
		prog+="${prog:+, }(try (${c#*::}) catch false)"
	done
	bad=$(jq -r "${args[@]}" "[$prog] | to_entries | map(select(.value != true))[0].key // empty" \
		"$T/ps.json") || fail "jq cannot read what evshm ps printed: $(head -c 2000 "$T/ps.json")"
	[ -z "$bad" ] || fail "${whats[$bad]} (evshm ps --json: $(head -c 3000 "$T/ps.json"))"
}

# jqv FILTER: the value FILTER selects in $T/ps.json, raw.
jqv() { jq -r "$1" "$T/ps.json"; }

# ps_fields FILTER FILE: the members of the object FILTER selects in
# $T/ps.json into FILE, one "key value" line each, for `reported`.
ps_fields() { jq -r "$1 | to_entries[] | \"\(.key) \(.value)\"" "$T/ps.json" >"$2"; }

# same WHAT A B: A and B must be equal.
same() { [ "$2" = "$3" ] || fail "$1: evshm ps shows '$2', expected '$3'"; }

# reported FILE KEY: what a peer (tests/peer_ps.c) said of KEY, or what
# ps_fields wrote of it.
reported() { awk -v k="$2" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$1"; }

# bg_start OUT CMD...: start the program CMD in the background, stdout to
# OUT; its pid in BG and in PIDS (killed at exit).  A program, not a shell
# function: then the pid is the program's own.
BG=0
bg_start() {
	local out=$1
	shift
	"$@" >"$out" &
	BG=$!
	PIDS+=("$BG")
}

# wait_ready FILE: until the peer writing FILE has said "ready".
wait_ready() { wait_for grep -qx ready "$1"; }
