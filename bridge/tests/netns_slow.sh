# A slow receiver on the far side holds the sender back: with the
# receiver stopped, the sender can get no further ahead than what the
# rings and the credit window hold; the bridges' queues stay within the
# window and their resident memory within rings + window (measured); when
# the receiver goes on, everything arrives, checked.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
srv=$(name srv)
imp=$(name imp)
ring=$((1 << 20))
window=$((1 << 20))
msg=65536
count=$((800 / SCALE + 100))
pause_after=16

secure_export export "$srv" --ring 1M --window 1M --stats-file "$T/export.stats"
secure_import import "$imp" --ring 1M --window 1M --stats-file "$T/import.stats"
wait_for at_least_up import 1
sleep 0.3
xrss0=$(rss_kib "$XPID")
irss0=$(rss_kib "$IPID")

step "$count messages of 64 KiB; the receiver stops after $pause_after for 3 s, then reads 1 a millisecond"
"${IN_B[@]}" "$PEER" recv "$srv" --count $count --max $msg --fixed \
	--pause-after $pause_after --pause-ms 3000 --delay-us 1000 --seconds 90 \
	--status "$T/recv.n" 2>"$T/recv.log" &
rpid=$!
PIDS+=("$rpid")
wait_for listening_b "$srv"
"${IN_A[@]}" "$PEER" send "$imp" --count $count --max $msg --fixed \
	--ring $ring --seconds 90 --status "$T/send.n" 2>"$T/send.log" &
spid=$!
PIDS+=("$spid")
paused() { [ -s "$T/recv.n" ] && [ "$(cat "$T/recv.n")" -eq $pause_after ]; }
wait_for paused
sleep 1.5

step "while the receiver is stopped: the sender is held back, memory bounded"
# What may sit between the two: the sender's ring, the window (in flight
# or queued in the export, one message over), the export's ring toward
# the receiver; one message in each program's hands.
cost=$((msg + 64))
per_ring=$((ring / (msg + 16))) # a record: a 16-byte header and the payload
cap=$((per_ring + window / cost + 1 + per_ring + 2))
a=$(cat "$T/send.n")
sleep 0.5
b=$(cat "$T/send.n")
echo "  sender at $b messages, receiver at $pause_after; at most $cap may be in between"
[ "$a" -eq "$b" ] || fail "the sender still moves ($a -> $b) with the receiver stopped"
(( b - pause_after <= cap )) || fail "the sender got $((b - pause_after)) ahead"
xq=$(stat_of "$T/export.stats" queued_bytes)
echo "  export queue: $xq bytes (window $window + one message $cost)"
(( xq <= window + cost )) || fail "the export holds $xq bytes"
xrss=$(rss_kib "$XPID")
irss=$(rss_kib "$IPID")
bound=$(( (2 * ring + 2 * window) / 1024 + 4096 ))
echo "  resident memory: export +$((xrss - xrss0)) KiB, import +$((irss - irss0)) KiB (bound $bound KiB)"
(( !CHECK_RSS || xrss - xrss0 <= bound )) || fail "export grew by $((xrss - xrss0)) KiB"
(( !CHECK_RSS || irss - irss0 <= bound )) || fail "import grew by $((irss - irss0)) KiB"

step "the receiver goes on: every message arrives, checked, in order"
wait_exit $spid 120000
[ "$RC" -eq 0 ] || fail "sender: $(cat "$T/send.log")"
wait_exit $rpid 30000
[ "$RC" -eq 0 ] || fail "receiver: $(cat "$T/recv.log")"
sleep 1.2 # the next stats file
for f in import export; do
	[ "$(stat_of "$T/$f.stats" msgs_lost)" -eq 0 ] || fail "$f lost messages"
	peak=$(stat_of "$T/$f.stats" queued_bytes_peak)
	(( peak <= window + cost )) || fail "$f queued $peak bytes at its peak"
	(( $(stat_of "$T/$f.stats" credit_stalls) > 0 )) || [ $f = export ] ||
		fail "the import never waited for credit"
done
stop_bridges
echo "ok"
