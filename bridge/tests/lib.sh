# Sourced by the bridge tests: `bash X.sh BUILD_DIR`.
#
# netns_setup makes two network namespaces joined by a veth pair, with a
# /30 of 10.x addresses on the two ends, *inside* the namespaces; nothing
# else is ever a target.  Names carry this shell's pid and a random tag,
# so that runs never collide.  An EXIT trap kills what the test started
# (what is in PIDS, what runs in its namespaces, and every other process
# below this shell: a job, what a subshell started) and deletes the
# namespaces (which deletes the veth pair) and the scratch directory.
# Every wait is bounded.
set -euo pipefail
BUILD=${1:?usage: $0 BUILD_DIR}
BRIDGE=$BUILD/bridge/evshm-bridge
PEER=$BUILD/bridge/tests/bridge-peer
EVSHM=$BUILD/tools/evshm
EXAMPLES=$BUILD/examples
SCALE=${EVSHM_TEST_SCALE:-1}
[ "$SCALE" -ge 1 ] 2>/dev/null || SCALE=1

# Liveness settings of every bridge in the tests, and the bound the man
# page promises for them: a failure is seen within TIMEOUT + TIMEOUT/20.
HEARTBEAT=0.25
TIMEOUT=2
BOUND_MS=2100
# What a loaded machine (sanitizers, other developers' benchmarks on the
# same two CPUs) may add to a bound; the measured times are printed.
SLACK_MS=5000

# Sanitizer runs (EVSHM_TEST_SCALE > 1) keep freed memory in quarantine:
# resident memory says nothing there, leaks are LeakSanitizer's job (each
# bridge is stopped with SIGTERM at the end and must exit 0).
CHECK_RSS=$((SCALE == 1))

# TSan builds: libzmq's own synchronisation is invisible (tsan.supp).
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tsan.supp"

T=$(mktemp -d "${TMPDIR:-/tmp}/evshm-bridge-test.XXXXXX")
TAG=$(printf '%x%04x' $$ $((RANDOM)))
NS_A="" NS_B=""
IN_A=() IN_B=()  # no namespace: loopback tests run here
PIDS=()
BRIDGES=()  # bridges running; each must stop cleanly on SIGTERM

. "$(dirname "${BASH_SOURCE[0]}")/../../tests/descendants.sh"

cleanup() {
	local p ns
	# Everything still running in our namespaces, then what we started,
	# then anything else below us: a process left behind after a failure
	# would keep CTest's pipe open until its timeout.
	for ns in "$NS_A" "$NS_B"; do
		[ -n "$ns" ] || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null || true
		done
	done
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	# (Braces: the shell's own "Killed" notice goes to /dev/null too.)
	for p in "${PIDS[@]}"; do { wait "$p"; } 2>/dev/null || true; done
	disown -a  # no "Killed" notices for the rest
	for p in $(descendants $$); do kill -9 "$p" 2>/dev/null || true; done
	[ -n "$NS_A" ] && ip netns del "$NS_A" 2>/dev/null || true
	[ -n "$NS_B" ] && ip netns del "$NS_B" 2>/dev/null || true
	ip link del "va$TAG" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; dump_logs >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
step() { echo "--- $*"; }
now_ms() { date +%s%3N; }

dump_logs() {
	local f
	for f in "$T"/*.log; do
		[ -e "$f" ] || continue
		echo "=== $f"
		tail -n 30 "$f"
	done
}

need_netns() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	command -v ip >/dev/null || skip "needs iproute2"
	ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"
}

# netns_setup: namespaces $NS_A (import side) and $NS_B (export side),
# veth va$TAG (in A, $ADDR_A) <-> vb$TAG (in B, $ADDR_B).
netns_setup() {
	need_netns
	local net="10.$((RANDOM % 200 + 20)).$((RANDOM % 250))"
	NS_A="evb-$TAG-a"
	NS_B="evb-$TAG-b"
	ADDR_A="$net.1"
	ADDR_B="$net.2"
	ip netns add "$NS_A" || skip "cannot create a network namespace"
	ip netns add "$NS_B"
	ip link add "va$TAG" type veth peer name "vb$TAG"
	ip link set "va$TAG" netns "$NS_A"
	ip link set "vb$TAG" netns "$NS_B"
	ip -n "$NS_A" addr add "$ADDR_A/30" dev "va$TAG"
	ip -n "$NS_B" addr add "$ADDR_B/30" dev "vb$TAG"
	ip -n "$NS_A" link set lo up
	ip -n "$NS_B" link set lo up
	ip -n "$NS_A" link set "va$TAG" up
	ip -n "$NS_B" link set "vb$TAG" up
	ENDPOINT="tcp://$ADDR_B:7300"
	IN_A=(ip netns exec "$NS_A")
	IN_B=(ip netns exec "$NS_B")
}

# Run in a namespace.  `ip netns exec` execs the command in place, so
# "${IN_A[@]}" CMD & gives CMD's own pid in $! (a shell function would
# put a subshell in between).
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# wait_for CMD...: poll until CMD succeeds (at most 20 s).
wait_for() {
	local i
	for ((i = 0; i < 400; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting for: $*"
}

# wait_exit PID [MS]: wait for a background job (at most MS, default
# 60000), killing it if it hangs.  Sets RC, ELAPSED_MS (from the call)
# and END_MS (when it was seen gone).
wait_exit() {
	local pid=$1 max=${2:-60000} t0 i
	t0=$(now_ms)
	while kill -0 "$pid" 2>/dev/null; do
		if (($(now_ms) - t0 > max)); then
			kill -9 "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			fail "process $pid hung (more than $max ms)"
		fi
		sleep 0.02
	done
	END_MS=$(now_ms)
	ELAPSED_MS=$((END_MS - t0))
	RC=0
	{ wait "$pid"; } 2>/dev/null || RC=$?
}

# expect_rc WANT CMD...: CMD exits WANT.
expect_rc() {
	local want=$1 rc=0
	shift
	"$@" >"$T/out.txt" 2>&1 || rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, not $want: $(cat "$T/out.txt")"
}

logged() { grep -q -- "$2" "$T/$1.log" 2>/dev/null; }
logged_f() { grep -qF -- "$2" "$T/$1.log" 2>/dev/null; } # a fixed string

# Keys for a pair of bridges: $T/exp.{key,pub}, $T/imp.{key,pub}, and
# the export's allow-list holding the import's key.
make_keys() {
	"$BRIDGE" keygen "$T/exp" >/dev/null
	"$BRIDGE" keygen "$T/imp" >/dev/null
	cp "$T/imp.pub" "$T/allowed"
}

# start_bridge ROLE LOGNAME LOCAL [args...]: an export (in B, binding
# $ENDPOINT) or an import (in A, connecting to it), logging to
# $T/LOGNAME.log; sets BPID once it has started.  LOCAL is a channel
# server's name (--local), or a topic's with LOCAL_OPT=--topic.
start_bridge() {
	local role=$1 log=$2 local_name=$3 ep_opt=--bind
	local -a ns=("${IN_B[@]}")
	shift 3
	if [ "$role" = import ]; then
		ns=("${IN_A[@]}")
		ep_opt=--connect
	fi
	"${ns[@]}" "$BRIDGE" "$role" "${LOCAL_OPT:---local}" "$local_name" \
		"$ep_opt" "$ENDPOINT" \
		--heartbeat $HEARTBEAT --timeout $TIMEOUT -v "$@" \
		2>"$T/$log.log" &
	BPID=$!
	PIDS+=("$BPID")
	BRIDGES+=("$BPID")
	wait_for logged "$log" "exporting\|listening at\|importing the topic"
}
start_export() { start_bridge export "$@"; XPID=$BPID; }
start_import() { start_bridge import "$@"; IPID=$BPID; }

forget_bridge() {
	local keep=() p
	for p in "${BRIDGES[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	BRIDGES=("${keep[@]}")
}

# kill_bridge PID: kill -9, as a crash would.
kill_bridge() {
	kill -9 "$1"
	forget_bridge "$1"
}

# stop_bridge PID: SIGTERM; it must exit 0 within 10 s (under ASan that
# also means no leak).  stop_bridges: every bridge still running, the last
# started first: an import (started after its export) stopped after its
# export would reconnect to the closing export in between, and count the
# handshake that fails there as a protocol error.
stop_bridge() {
	kill -TERM "$1"
	wait_exit "$1" 10000
	[ "$RC" -eq 0 ] || fail "bridge $1 exited $RC on SIGTERM"
	forget_bridge "$1"
}
stop_bridges() {
	while ((${#BRIDGES[@]})); do stop_bridge "${BRIDGES[-1]}"; done
}

secure_export() { start_export "$1" "$2" --key "$T/exp.key" --allow "$T/allowed" "${@:3}"; }
secure_import() { start_import "$1" "$2" --key "$T/imp.key" --server-key "$T/exp.pub" "${@:3}"; }
# The same for a topic: the export subscribes to the topic NAME in B, the
# import publishes it at its NAME in A.
topic_export() { LOCAL_OPT=--topic secure_export "$@"; }
topic_import() { LOCAL_OPT=--topic secure_import "$@"; }

# sessions_up LOGNAME: how many sessions the bridge logged as up;
# at_least_up LOGNAME N: are there N?  (For wait_for, which evaluates
# its command each time.)
sessions_up() { grep -c " up$" "$T/$1.log" || true; }
at_least_up() { [ "$(sessions_up "$1")" -ge "$2" ]; }

fd_count() { ls "/proc/$1/fd" | wc -l; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
stat_of() { awk -v k="$2" '$1 == k {print $2}' "$1"; }

# listening_b NAME / listening_a NAME: a server (or a topic's publisher)
# listens at the abstract NAME in B / A.
listening_b() { "${IN_B[@]}" grep -q " ${1/@/@}\$" /proc/net/unix; }
listening_a() { "${IN_A[@]}" grep -q " ${1/@/@}\$" /proc/net/unix; }

# A name for the evshm channels of this test.
name() { echo "@evb-$TAG-$1"; }
