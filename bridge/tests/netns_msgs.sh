# Message boundaries across the bridges: every size from 0 to the largest
# a channel carries arrives whole, in order, checked byte by byte; what
# cannot cross hosts is refused visibly, never dropped:
#   - a message with a descriptor: the channel fails on both hosts, the
#     log says why, the counter counts it;
#   - a channel whose messages the export cannot carry: refused at open;
#   - a client ring beyond the import's --ring: refused at connect.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
srv=$(name srv)
imp=$(name imp)
secure_export export "$srv" --stats-file "$T/export.stats"
secure_import import "$imp" --stats-file "$T/import.stats"
wait_for logged import " up$"

# transfer TAG RING MAX COUNT: sizes 0..MAX (message 0 empty, 1 of MAX).
transfer() {
	local tag=$1 ring=$2 max=$3 count=$4
	"${IN_B[@]}" "$PEER" recv "$srv" --count "$count" --max "$max" \
		--seconds 60 2>"$T/recv-$tag.log" &
	local r=$!
	PIDS+=("$r")
	wait_for listening_b "$srv"
	in_a "$PEER" send "$imp" --count "$count" --max "$max" --ring "$ring" \
		--seconds 60 2>"$T/send-$tag.log" || fail "send ($tag) failed"
	wait_exit $r
	[ "$RC" -eq 0 ] || fail "recv ($tag) failed"
}

step "0 to 512 KiB - 16 (the largest of a 1 MiB ring), $((2000 / SCALE + 2)) messages"
transfer small 1048576 524272 $((2000 / SCALE + 2))
step "0 to 2 MiB - 16 (the largest of --ring 4M, the default)"
transfer large 4194304 2097136 $((200 / SCALE + 2))

step "a message with a descriptor: refused at once on the sending side"
# The bridge does not opt in to descriptors (EVSHM_OPT_FDS): the sender's
# evshm_send_fds() fails with -EOPNOTSUPP before anything is sent; the
# sender then exits, and the receiver has exactly messages 0-4.
"${IN_B[@]}" "$PEER" recv "$srv" --count 20 --max 4096 --seconds 30 \
	2>"$T/recv-fds.log" &
r=$!
PIDS+=("$r")
wait_for listening_b "$srv"
rc=0
in_a "$PEER" send "$imp" --count 20 --max 4096 --fds-at 5 --seconds 30 \
	2>"$T/send-fds.log" || rc=$?
[ "$rc" -eq 1 ] || fail "the sender exited $rc, not 1"
wait_exit $r
[ "$RC" -eq 1 ] || fail "the receiver exited $RC, not 1"
grep -q "after 5 messages: peer has gone" "$T/recv-fds.log" ||
	fail "the receiver did not get exactly messages 0-4: $(cat "$T/recv-fds.log")"
grep -q "after 5 messages: the peer does not accept descriptors" "$T/send-fds.log" ||
	fail "the sender saw no clear refusal: $(cat "$T/send-fds.log")"

step "a client ring beyond the import's --ring: refused at connect"
rc=0
in_a "$PEER" send "$imp" --count 1 --ring $((8 << 20)) --seconds 10 \
	2>"$T/send-big.log" || rc=$?
[ "$rc" -eq 1 ] || fail "a client with an 8 MiB ring got in ($rc)"

step "an export whose --ring cannot carry the import's messages refuses them"
stop_bridge "$XPID"
secure_export export2 "$srv" --ring 1M
wait_for at_least_up import 2
"${IN_B[@]}" "$PEER" recv "$srv" --count 1 --seconds 15 2>"$T/recv-ring.log" &
PIDS+=($!)
wait_for listening_b "$srv"
rc=0
in_a "$PEER" send "$imp" --count 1 --seconds 15 2>"$T/send-ring.log" || rc=$?
[ "$rc" -eq 1 ] || fail "the channel was not refused ($rc)"
wait_for logged export2 "refused: the import's clients may send 2097136-byte"
wait_for logged import "the far end could not open the channel"
stop_bridges
echo "ok"
