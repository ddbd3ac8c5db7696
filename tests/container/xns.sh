#!/usr/bin/env bash
# The two ends of a channel in separate containers: each runs in new user,
# mount, pid, ipc and net namespaces (unshare and setpriv from util-linux),
# with its own /dev/shm, /run and /tmp.  The only thing the two share is one
# directory of the host, bind-mounted at /run/app in each: no shared
# /dev/shm, no shared IPC namespace, no shared network namespace (so no
# abstract socket names either).
#
#   bash xns.sh /path/to/xns_peer      (as root; exit 77 when it cannot run)
#
# Cases:
#   1. two containers with the same uid mapping (container root = host uid
#      100000): messages both ways; each sees the other as uid 0 (the kernel
#      maps the peer's host uid into the reader's namespace) and pid 0 (a
#      sibling pid namespace is invisible); killing the client (SIGKILL) is
#      seen by the server.  The library's default policies admit the peer:
#      the listener's (same effective uid) today, and a connect-side "same
#      effective uid or root" check too, since both ends are uid 0 there.
#   2. containers with different mappings (100000 and 200000): each is
#      unmapped in the other's namespace (the overflow uid), so the default
#      policy refuses: connect fails with -EACCES.
#   3. a server on the host, a client in a container: the server sees the
#      client's host pid and host uid 100000, the client sees pid 0 and the
#      overflow uid; both admit the other with an explicit authorize
#      callback for exactly those uids (as a connect-side default of "same
#      effective uid or root" would refuse the overflow uid).  Killing the
#      server is seen by the client.
set -euo pipefail
PEER=${1:?usage: $0 /path/to/xns_peer}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (to map uid ranges into user namespaces)"
for t in unshare setpriv mount; do
	command -v "$t" >/dev/null || skip "no $t (util-linux)"
done
OVERFLOW_UID=$(cat /proc/sys/kernel/overflowuid)
OVERFLOW_GID=$(cat /proc/sys/kernel/overflowgid)

T=$(mktemp -d "${TMPDIR:-/tmp}/evshm-xns.XXXXXX")
KILL=()       # host pids to kill at exit (a pid namespace's init takes its namespace with it)
cleanup() {
	local p
	for p in "${KILL[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${XNS_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
# Container roots are other uids: they must reach $T/bin and $T/sock.
chmod 755 "$T"
mkdir "$T/bin" "$T/sock"
cp "$PEER" "$T/bin/xns_peer"
MARKER=evshm-xns-$$

# Run inside the new namespaces by `sh -c`, with the command as "$@".  It
# waits for the id maps the test writes from outside, becomes the
# namespace's root (host uid BASE), and builds the container's view: its
# own /proc, /dev/shm, /run and /tmp, the shared socket directory at
# /run/app and the test program at /run/bin.  Exit 9x: setup failed.
INSIDE='
i=0
while [ -z "$(cat /proc/self/uid_map)" ]; do
	i=$((i + 1)); [ $i -lt 2000 ] || exit 90; sleep 0.01
done
exec setpriv --reuid=0 --regid=0 --clear-groups sh -c "
	set -e
	mount -t proc proc /proc || exit 91
	mount -t tmpfs tmpfs /dev/shm || exit 92
	mount -t tmpfs tmpfs /run && mkdir /run/app /run/bin || exit 93
	mount --bind \"\$XNS_SOCK\" /run/app && mount --bind \"\$XNS_BIN\" /run/bin || exit 94
	mount -t tmpfs tmpfs /tmp || exit 95
	[ ! -e /dev/shm/\$XNS_MARKER ] || { echo \"/dev/shm is shared\"; exit 96; }
	touch /dev/shm/\$XNS_MARKER
	exec \"\$@\"
" inside "$@"
'

# container NAME BASE CMD...: start CMD in a container whose root is host
# uid and gid BASE (65536 ids mapped); its output goes to $T/NAME.out.
# Sets CPID[NAME] to the unshare process (its exit status is CMD's).
declare -A CPID
container() {
	local name=$1 base=$2 upid me i
	shift 2
	XNS_SOCK=$T/sock XNS_BIN=$T/bin XNS_MARKER=$MARKER \
		unshare --user --keep-caps --mount --pid --ipc --net --fork \
		sh -c "$INSIDE" inside "$@" >"$T/$name.out" 2>&1 &
	upid=$!
	KILL+=("$upid")
	CPID[$name]=$upid
	me=$(readlink /proc/self/ns/user)
	for ((i = 0; i < 400; i++)); do
		[ "$(readlink "/proc/$upid/ns/user" 2>/dev/null)" != "$me" ] && break
		sleep 0.01
	done
	echo "0 $base 65536" >"/proc/$upid/uid_map"
	echo "0 $base 65536" >"/proc/$upid/gid_map"
}

# init_of NAME: the host pid of the container's first process (the peer).
init_of() {
	local upid=${CPID[$1]} p
	p=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null || ps -o pid= --ppid "$upid")
	echo $p
}

# wait_line FILE REGEX: until a line of FILE matches (at most 20 s).
wait_line() {
	local i
	for ((i = 0; i < 400; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "--- $1:"; cat "$1" >&2
	fail "no line matching '$2' in $(basename "$1")"
}

# expect FILE LINE: FILE has exactly that line.
expect() {
	grep -qxF -- "$2" "$1" || { cat "$1" >&2; fail "$(basename "$1"): expected '$2'"; }
}

# wait_exit PID [WANT]: PID (a child of ours) exits, with status WANT if
# given, in 20 s.
wait_exit() {
	local i rc=0
	for ((i = 0; i < 400; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$1" 2>/dev/null && fail "process $1 did not exit"
	wait "$1" || rc=$?
	[ -z "${2:-}" ] || [ "$rc" -eq "$2" ] || fail "process $1 exited $rc, expected $2"
}

step "probe: can this machine make the namespaces?"
container probe 100000 true
rc=0; wait "${CPID[probe]}" || rc=$?
if [ "$rc" -ne 0 ]; then
	cat "$T/probe.out"
	skip "cannot set up a container here (exit $rc)"
fi

# The shared directory belongs to the containers' root (host uid 100000).
chown 100000:100000 "$T/sock"

step "1. two containers, same uid mapping: both ways, creds, peer death"
container srv1 100000 /run/bin/xns_peer server /run/app/one
wait_line "$T/srv1.out" '^listening$'
container cli1 100000 /run/bin/xns_peer client /run/app/one
wait_line "$T/cli1.out" '^exchanged '
wait_line "$T/srv1.out" '^exchanged '
for side in srv1 cli1; do
	expect "$T/$side.out" "self pid=1 uid=0 gid=0"
	expect "$T/$side.out" "peer pid=0 uid=0 gid=0"
done
[ ! -e "/dev/shm/$MARKER" ] || fail "a container wrote to the host's /dev/shm"
kill -9 "$(init_of cli1)"
wait_line "$T/srv1.out" '^peer gone$'
wait_exit "${CPID[srv1]}" 0
wait_exit "${CPID[cli1]}"   # killed (unshare 2.38 reports that as 1)

step "2. different uid mappings: the peer is the overflow uid, refused by default"
container srv2 100000 /run/bin/xns_peer server --mode 0666 /run/app/two
wait_line "$T/srv2.out" '^listening$'
container cli2 200000 /run/bin/xns_peer client /run/app/two
wait_exit "${CPID[cli2]}" 3
expect "$T/cli2.out" "error connect -13 access denied"
wait_exit "${CPID[srv2]}" 3
grep -q '^error accept ' "$T/srv2.out" || fail "the server accepted a client of another mapping"

step "3. host server, container client: host pid and uid one way, 0 and overflow the other"
"$T/bin/xns_peer" server --mode 0666 --allow-uid 100000 "$T/sock/three" >"$T/srv3.out" 2>&1 &
srv3=$!
KILL+=("$srv3")
wait_line "$T/srv3.out" '^listening$'
container cli3 100000 /run/bin/xns_peer client --allow-uid "$OVERFLOW_UID" /run/app/three
wait_line "$T/cli3.out" '^exchanged '
wait_line "$T/srv3.out" '^exchanged '
cli3=$(init_of cli3)
expect "$T/srv3.out" "authorize pid=$cli3 uid=100000 gid=100000"
expect "$T/srv3.out" "peer pid=$cli3 uid=100000 gid=100000"
expect "$T/cli3.out" "authorize pid=0 uid=$OVERFLOW_UID gid=$OVERFLOW_GID"
expect "$T/cli3.out" "peer pid=0 uid=$OVERFLOW_UID gid=$OVERFLOW_GID"
{ kill -9 "$srv3" && wait "$srv3"; } 2>/dev/null || true
wait_line "$T/cli3.out" '^peer gone$'
wait_exit "${CPID[cli3]}" 0

echo "ok"
