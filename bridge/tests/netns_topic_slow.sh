# Reliable topic, end-to-end backpressure: a subscriber on the far host
# stops, then reads slowly.  The publisher (in B) is held back by it: it
# gets no further ahead than the rings and the credit window hold, the
# import's queue stays within the window, and both bridges' resident
# memory within rings + window (measured); when the subscriber goes on,
# everything arrives, checked, and nobody was dropped.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
src=$(name src)
imp=$(name imp)
ring=$((1 << 20))
window=$((1 << 20))
msg=65536
count=$((240 / SCALE + 60))
pause_after=16

topic_export export "$src" --ring 1M --window 1M --stats-file "$T/export.stats"
topic_import import "$imp" --ring 1M --window 1M --subscribers 1 \
	--stall-timeout 10 --stats-file "$T/import.stats"
wait_for at_least_up import 1
sleep 0.3
xrss0=$(rss_kib "$XPID")
irss0=$(rss_kib "$IPID")

step "$count messages of 64 KiB; the subscriber in A stops after $pause_after for 2.5 s, then reads 1 a millisecond"
"${IN_A[@]}" "$PEER" sub "$imp" --count $count --max $msg --fixed \
	--policy reliable --pause-after $pause_after --pause-ms 2500 \
	--delay-us 1000 --seconds 60 --status "$T/sub.n" 2>"$T/sub.log" &
spid=$!
PIDS+=($spid)
"${IN_B[@]}" "$PEER" pub "$src" --count $count --max $msg --fixed \
	--ring $ring --subscribers 1 --stall-ms 10000 --seconds 60 \
	--status "$T/pub.n" 2>"$T/pub.log" &
ppid=$!
PIDS+=($ppid)
paused() { [ -s "$T/sub.n" ] && [ "$(cut -d' ' -f1 "$T/sub.n")" -eq $pause_after ]; }
wait_for paused
sleep 1

step "while the subscriber is stopped: the publisher is held back, memory bounded"
# What may sit between the two: the subscriber's ring in A, the window (in
# flight or queued in the import, one message over), the publisher's ring
# in B; one message in the publisher's hands and one peeked by the export.
cost=$((msg + 64))
per_ring=$((ring / (msg + 16))) # a record: a 16-byte header and the payload
cap=$((per_ring + window / cost + 1 + per_ring + 2))
a=$(cat "$T/pub.n")
sleep 0.5
b=$(cat "$T/pub.n")
echo "  publisher at $b messages, subscriber at $pause_after; at most $cap may be in between"
[ "$a" -eq "$b" ] || fail "the publisher still moves ($a -> $b) with the subscriber stopped"
(( b - pause_after <= cap )) || fail "the publisher got $((b - pause_after)) ahead"
sleep 0.6 # the stats files
iq=$(stat_of "$T/import.stats" queued_bytes)
echo "  import queue: $iq bytes (window $window + one message $cost)"
(( iq <= window + cost )) || fail "the import holds $iq bytes"
xrss=$(rss_kib "$XPID")
irss=$(rss_kib "$IPID")
bound=$(( (2 * ring + 2 * window) / 1024 + 4096 ))
echo "  resident memory: export $xrss KiB (+$((xrss - xrss0))), import $irss KiB (+$((irss - irss0))); bound +$bound KiB"
(( !CHECK_RSS || xrss - xrss0 <= bound )) || fail "export grew by $((xrss - xrss0)) KiB"
(( !CHECK_RSS || irss - irss0 <= bound )) || fail "import grew by $((irss - irss0)) KiB"

step "the subscriber goes on: every message arrives, checked, nobody dropped"
wait_exit $ppid 60000
[ "$RC" -eq 0 ] || fail "publisher: $(cat "$T/pub.log")"
wait_exit $spid 30000
[ "$RC" -eq 0 ] || fail "subscriber: $(cat "$T/sub.log")"
sleep 1.2 # the stats files
for f in import export; do
	for k in msgs_lost topic_lost topic_dropped protocol_errors; do
		[ "$(stat_of "$T/$f.stats" $k)" -eq 0 ] || fail "$f: $k is not 0"
	done
done
peak=$(stat_of "$T/import.stats" queued_bytes_peak)
(( peak <= window + cost )) || fail "the import queued $peak bytes at its peak"
(( $(stat_of "$T/export.stats" credit_stalls) > 0 )) ||
	fail "the export never waited for credit"
echo "  import queue peak $peak bytes; export waited for credit $(stat_of "$T/export.stats" credit_stalls) times"
stop_bridges
echo "ok"
