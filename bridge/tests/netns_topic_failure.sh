# Failures of a bridged topic: kill -9 of the export, of the import, of
# the publisher, the veth link going down, a client key the export does
# not know.  Each time every affected subscriber (two in A) fails visibly
# -- exit 1, "peer has gone" -- within the documented bound (--timeout +
# --timeout/20, plus what a loaded machine adds); nothing hangs; the
# bridge that survives keeps its descriptors and memory and carries the
# topic again afterwards.  A subscriber in A that stops is dropped there
# after --stall-timeout (it sees the drop when it resumes), and the other
# one goes on.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
"$BRIDGE" keygen "$T/stranger" >/dev/null
src=$(name src)
imp=$(name imp)
limit=$((BOUND_MS + SLACK_MS))
STALL=0.5
STALL_MS=500
round=0

# start_traffic: a publisher in B (reliable, 4 KiB, about 5000 a second)
# and two subscribers in A, joining where the stream is; returns once
# both receive.  PPID_, S1, S2.
start_traffic() {
	local i
	round=$((round + 1))
	"${IN_B[@]}" "$PEER" pub "$src" --count 1000000000 --max 4096 --fixed \
		--ring 65536 --delay-us 200 --stall-ms 3000 --seconds 60 \
		2>"$T/pub-$round.log" &
	PPID_=$!
	PIDS+=($PPID_)
	for i in 1 2; do
		"${IN_A[@]}" "$PEER" sub "$imp" --count 1000000000 --max 4096 \
			--fixed --join --policy reliable --seconds 60 \
			--status "$T/sub$i-$round.n" 2>"$T/sub$i-$round.log" &
		eval "S$i=\$!"
		PIDS+=($!)
	done
	wait_for flowing "$T/sub1-$round.n"
	wait_for flowing "$T/sub2-$round.n"
}
flowing() { [ -s "$1" ] && [ "$(cut -d' ' -f1 "$1")" -ge 200 ]; }
received() { cut -d' ' -f1 "$T/sub$1-$round.n"; }

# subs_fail T_MS WHAT [BOUND_MS]: both subscribers exit 1, their
# publisher gone, within the bound from T_MS.
subs_fail() {
	local t=$1 what=$2 bound=${3:-$limit} i pid
	for i in 1 2; do
		pid=S$i
		wait_exit "${!pid}" 30000
		[ "$RC" -eq 1 ] || fail "$what: subscriber $i exited $RC"
		grep -q "peer has gone" "$T/sub$i-$round.log" ||
			fail "$what: subscriber $i said: $(cat "$T/sub$i-$round.log")"
		(( END_MS - t <= bound )) ||
			fail "$what: subscriber $i took $((END_MS - t)) ms"
		echo "  subscriber $i failed after $((END_MS - t)) ms ($(received $i) messages)"
	done
}

# end_round: the publisher of this round goes (it may be gone already).
end_round() {
	kill -9 "$PPID_" 2>/dev/null || true
	wait "$PPID_" 2>/dev/null || true
}

# no_growth WHO PID FDS0 RSS0
no_growth() {
	local fds rss
	fds=$(fd_count "$2")
	rss=$(rss_kib "$2")
	echo "  $1: $fds descriptors (first round $3), $rss KiB (first round $4)"
	[ "$fds" -eq "$3" ] || fail "$1: descriptors went from $3 to $fds"
	(( !CHECK_RSS || rss - $4 <= 2048 )) ||
		fail "$1: resident memory grew from $4 to $rss KiB"
}

topic_export export "$src" --stats-file "$T/export.stats"
topic_import import "$imp" --stall-timeout $STALL --stats-file "$T/import.stats"
wait_for at_least_up import 1

# kill_rounds VICTIM SURVIVOR: kill -9 the bridge VICTIM (export or
# import) under traffic, twice; the subscribers fail in time, the
# SURVIVOR keeps its descriptors and memory (compared at the same point
# of each round: the topic flowing), the victim is started again.
kill_rounds() {
	local victim=$1 survivor=$2 i fds0 rss0 t spid
	for i in 1 2; do
		start_traffic
		[ "$survivor" = export ] && spid=$XPID || spid=$IPID
		if [ $i -eq 1 ]; then
			fds0=$(fd_count "$spid")
			rss0=$(rss_kib "$spid")
		else
			no_growth "$survivor" "$spid" "$fds0" "$rss0"
		fi
		t=$(now_ms)
		[ "$victim" = export ] && kill_bridge "$XPID" || kill_bridge "$IPID"
		subs_fail "$t" "$victim killed"
		end_round
		if [ "$victim" = export ]; then
			topic_export "export$i" "$src"
			wait_for at_least_up import $((i + 1))
		else
			topic_import "import$i" "$imp" --stall-timeout $STALL
			wait_for at_least_up "import$i" 1
		fi
	done
}

step "kill -9 of the export, twice: the subscribers in A fail, the import recovers"
kill_rounds export import
logged import "connection to the export was lost" || fail "not logged"

step "kill -9 of the import, twice: the subscribers in A fail, the export stays"
kill_rounds import export
wait_for logged export2 "import's connection is gone\|nothing heard"

step "kill -9 of the publisher: the subscribers in A read what crossed, then fail"
start_traffic
t=$(now_ms)
kill -9 "$PPID_"
subs_fail "$t" "publisher killed"
end_round
wait_for logged export2 "the publisher closed the topic"
logged import2 "the publisher closed the topic" || fail "the import did not say why"

step "the link goes down under traffic: the subscribers fail within --timeout"
start_traffic
t=$(now_ms)
ip -n "$NS_A" link set "va$TAG" down
subs_fail "$t" "link down"
end_round
ip -n "$NS_A" link set "va$TAG" up
logged import2 "nothing heard for\|connection is gone\|connection to the export was lost" ||
	fail "the import did not time the session out"
wait_for logged export2 "nothing heard for\|connection is gone"
wait_for at_least_up import2 2

step "a subscriber in A stops: the import's publisher drops it after --stall-timeout, the other goes on"
start_traffic
t=$(now_ms)
kill -STOP "$S2"
wait_for logged import2 "dropped 1 local subscriber"
echo "  dropped in A after $(( $(now_ms) - t )) ms (--stall-timeout $STALL_MS ms)"
(( $(now_ms) - t <= STALL_MS + BOUND_MS + SLACK_MS )) || fail "dropped too late"
kill -0 "$S1" || fail "the other subscriber did not go on: $(cat "$T/sub1-$round.log")"
a=$(received 1)
sleep 0.5
(( $(received 1) > a )) || fail "the other subscriber does not move on"
kill -9 "$S1" 2>/dev/null || true
wait "$S1" 2>/dev/null || true
kill -CONT "$S2"
wait_exit "$S2" 10000
[ "$RC" -eq 1 ] && grep -q "dropped by the publisher" "$T/sub2-$round.log" ||
	fail "the stopped subscriber: $RC $(cat "$T/sub2-$round.log")"
echo "  the stopped subscriber, resumed: $(tail -n 1 "$T/sub2-$round.log")"
end_round

step "an import whose key the export does not know: refused, logged, nothing published"
LOCAL_OPT=--topic start_import stranger "$(name stranger)" \
	--key "$T/stranger.key" --server-key "$T/exp.pub"
wait_for logged_f export2 "its key $(awk '/^public-key/ {print $2}' "$T/stranger.pub") is not in the allow-list"
wait_for logged stranger "the export refused this bridge's key"
sleep 0.5
! listening_a "$(name stranger)" || fail "the refused import publishes"
stop_bridge "$IPID"

step "after all that, the topic still crosses"
start_traffic
for i in 1 2; do
	pid=S$i
	kill -9 "${!pid}" 2>/dev/null || true
	wait "${!pid}" 2>/dev/null || true
done
end_round
stop_bridges
echo "ok"
