# Failures end to end: kill -9 of the export, kill -9 of the import, the
# veth link going down under traffic, and kill -9 of either application.  Each time both applications
# (a sender in A, a receiver in B) must fail visibly -- exit 1 with "peer
# has gone" -- within the documented bound (--timeout + --timeout/20, plus
# what a loaded machine adds), nothing may hang, and the bridge that
# survives must come back to its own descriptor count and memory after
# the failure, every time (several rounds).
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
srv=$(name srv)
imp=$(name imp)
limit=$((BOUND_MS + SLACK_MS))
round=0

start_traffic() {
	round=$((round + 1))
	"${IN_B[@]}" "$PEER" recv "$srv" --count 1000000000 --max 4096 \
		--seconds 60 --status "$T/recv-$round.n" 2>"$T/recv-$round.log" &
	SPID=$!
	PIDS+=("$SPID")
	wait_for listening_b "$srv"
	"${IN_A[@]}" "$PEER" send "$imp" --count 1000000000 --max 4096 \
		--seconds 60 2>"$T/send-$round.log" &
	CPID=$!
	PIDS+=("$CPID")
	wait_for flowing "$T/recv-$round.n"
}
flowing() { [ -s "$1" ] && [ "$(cat "$1")" -ge 1000 ]; }

# both_fail T_MS WHAT: the two applications exit 1, saying their peer has
# gone, within the bound of T_MS.
both_fail() {
	local t=$1 what=$2 pid side
	for side in send recv; do
		[ $side = send ] && pid=$CPID || pid=$SPID
		wait_exit "$pid" 30000
		[ "$RC" -eq 1 ] || fail "$what: the $side side exited $RC"
		grep -q "peer has gone" "$T/$side-$round.log" ||
			fail "$what: $side said: $(cat "$T/$side-$round.log")"
		(( END_MS - t <= limit )) ||
			fail "$what: the $side side took $((END_MS - t)) ms (bound $BOUND_MS ms)"
		echo "  $side side failed after $((END_MS - t)) ms"
	done
}

# settle PID LOG STATS: the bridge holds no channel and its session is
# up; then FDS and RSS are its descriptors and resident KiB.
settle() {
	local pid=$1 log=$2 stats=$3
	wait_for grep -q "^streams_open 0$" "$stats"
	sleep 0.3
	FDS=$(fd_count "$pid")
	RSS=$(rss_kib "$pid")
}

# no_growth WHO FDS0 RSS0: compare with a first round.
no_growth() {
	echo "  $1: $FDS descriptors (first round $2), $RSS KiB (first round $3)"
	[ "$FDS" -eq "$2" ] || fail "$1: descriptors went from $2 to $FDS"
	(( !CHECK_RSS || RSS - $3 <= 2048 )) ||
		fail "$1: resident memory grew from $3 to $RSS KiB"
}

secure_export export "$srv" --stats-file "$T/export.stats"
secure_import import "$imp" --stats-file "$T/import.stats"
wait_for at_least_up import 1

step "kill -9 of the export, three times: both ends fail, the import recovers"
for i in 1 2 3; do
	start_traffic
	t=$(now_ms)
	kill_bridge "$XPID"
	both_fail "$t" "export killed"
	logged import "connection to the export was lost" || fail "no log"
	secure_export "export$i" "$srv"
	wait_for at_least_up import $((i + 1))
	settle "$IPID" import "$T/import.stats"
	[ $i -eq 1 ] && { fds0=$FDS; rss0=$RSS; }
done
no_growth import "$fds0" "$rss0"

step "kill -9 of the import, three times: both ends fail, the export stays"
stop_bridge "$XPID"
secure_export export "$srv" --stats-file "$T/export.stats"
wait_for at_least_up import 5
for i in 1 2 3; do
	start_traffic
	t=$(now_ms)
	kill_bridge "$IPID"
	both_fail "$t" "import killed"
	secure_import "import$i" "$imp"
	wait_for at_least_up "import$i" 1
	settle "$XPID" export "$T/export.stats"
	[ $i -eq 1 ] && { fds0=$FDS; rss0=$RSS; }
done
no_growth export "$fds0" "$rss0"
wait_for logged export "import's connection is gone\|nothing heard"

step "the link goes down under traffic, twice: both ends fail in time, both bridges recover"
stop_bridge "$IPID"
secure_import import "$imp" --stats-file "$T/import.stats"
wait_for at_least_up import 1
for i in 1 2; do
	start_traffic
	t=$(now_ms)
	ip -n "$NS_A" link set "va$TAG" down
	both_fail "$t" "link down"
	ip -n "$NS_A" link set "va$TAG" up
	wait_for at_least_up import $((i + 1))
	settle "$IPID" import "$T/import.stats"
	ifds=$FDS irss=$RSS
	settle "$XPID" export "$T/export.stats"
	if [ $i -eq 1 ]; then
		ifds0=$ifds irss0=$irss xfds0=$FDS xrss0=$RSS
	fi
done
no_growth export "$xfds0" "$xrss0"
FDS=$ifds RSS=$irss no_growth import "$ifds0" "$irss0"
# Either the bridge's own clock or ZeroMQ's heartbeat (whichever runs out
# first on a slow machine) ends a session whose link is down.
logged import "nothing heard for\|connection is gone\|connection to the export was lost" ||
	fail "the import did not time the session out"
logged export "nothing heard for\|connection is gone" ||
	fail "the export did not time the session out"

step "kill -9 of an application: the one on the other host fails, the session stays"
# app_killed VICTIM SURVIVOR SIDE: kill -9 VICTIM under traffic; the
# SURVIVOR (its peer on the other host, the SIDE side) fails in time.
app_killed() {
	local t
	start_traffic
	t=$(now_ms)
	kill -9 "${!1}"
	wait_exit "${!2}" 30000
	[ "$RC" -eq 1 ] || fail "the $3 side exited $RC when its peer was killed"
	grep -q "peer has gone" "$T/$3-$round.log" || fail "$(cat "$T/$3-$round.log")"
	echo "  $3 side failed after $((END_MS - t)) ms"
	(( END_MS - t <= limit )) || fail "the $3 side took $((END_MS - t)) ms"
}
sessions=$(sessions_up import)
app_killed SPID CPID send
app_killed CPID SPID recv
[ "$(sessions_up import)" -eq "$sessions" ] || fail "the session was lost"

step "after all that, a transfer still works"
"${IN_B[@]}" "$PEER" recv "$srv" --count 500 --seconds 30 2>"$T/recv-last.log" &
r=$!
PIDS+=("$r")
wait_for listening_b "$srv"
in_a "$PEER" send "$imp" --count 500 --seconds 30 2>"$T/send-last.log" ||
	fail "the last transfer failed"
wait_exit $r
[ "$RC" -eq 0 ] || fail "the last receiver failed"
stop_bridges
echo "ok"
