# A topic across two network namespaces: `evshm pub` in B, the export
# subscribed once, the import republishing it in A to several `evshm sub`
# (and one more subscriber in B): everyone gets the stream byte-exact, and
# one copy crossed the link.  Then every size from 0 to the largest message
# of the ring, checked message by message, the policy learnt by the
# subscribers; then a latest topic whose import stalls for a moment:
# messages are lost, never torn or reordered, and every loss is counted
# (the export's, the import's and the subscriber's figures agree).
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
src=$(name src)
imp=$(name imp)

step "evshm pub (B) -> export -> import -> 3 x evshm sub (A), and 1 x evshm sub in B"
bytes=$((4 * 1024 * 1024 / SCALE + 4096))
"$PEER" gen "$bytes" >"$T/data"
topic_export export "$src" --stats-file "$T/export.stats"
topic_import import "$imp" --subscribers 3 --stats-file "$T/import.stats"
subs=()
for i in 1 2 3; do
	"${IN_A[@]}" "$EVSHM" sub --wait --timeout 20 "$imp" >"$T/out$i" \
		2>"$T/sub$i.log" &
	subs+=($!)
	PIDS+=($!)
done
"${IN_B[@]}" "$EVSHM" sub --wait --timeout 20 "$src" >"$T/outb" 2>"$T/subb.log" &
subs+=($!)
PIDS+=($!)
# Two subscribers: the one in B and the export (once the import asks).
"${IN_B[@]}" "$EVSHM" pub --subscribers 2 --timeout 20 --chunk 64K "$src" \
	<"$T/data" 2>"$T/pub.log" &
ppid=$!
PIDS+=($ppid)
wait_exit $ppid 30000
[ "$RC" -eq 0 ] || fail "evshm pub exited $RC: $(cat "$T/pub.log")"
for i in 0 1 2 3; do
	wait_exit "${subs[$i]}" 15000
	[ "$RC" -eq 0 ] || fail "subscriber $i exited $RC"
done
for f in out1 out2 out3 outb; do
	cmp -s "$T/data" "$T/$f" || fail "$f differs from what was published"
done
logged import "streaming (3 local subscribers)" || fail "did not wait for 3"
logged export "subscribed (reliable" || fail "no subscription logged"
logged import "publishing here (reliable" || fail "no local topic logged"
sleep 1.1 # the stats files
# One copy crossed: the 64 KiB chunks and the end marker, once each.
msgs=$((bytes / 65536 + (bytes % 65536 > 0) + 1))
for k in bytes_out:export bytes_in:import; do
	v=$(stat_of "$T/${k#*:}.stats" "${k%:*}")
	[ "$v" -eq "$bytes" ] || fail "${k#*:}: ${k%:*} $v, not $bytes"
done
[ "$(stat_of "$T/export.stats" msgs_out)" -eq $msgs ] || fail "export: msgs_out $(stat_of "$T/export.stats" msgs_out), not $msgs"
[ "$(stat_of "$T/import.stats" msgs_in)" -eq $msgs ] || fail "import: msgs_in differs"
for f in import export; do
	for k in msgs_lost protocol_errors topic_lost topic_dropped; do
		v=$(stat_of "$T/$f.stats" $k)
		[ "$v" -eq 0 ] || fail "$f: $k is $v"
	done
done
echo "  4 subscribers byte-exact; $msgs messages, $bytes bytes crossed once"

step "every size from 0 to the largest message of a 1 MiB ring, two subscribers"
ring=$((1 << 20))
max=$((ring / 2 - 16))
count=$((300 / SCALE + 40))
stop_bridges
topic_export export2 "$src" --stats-file "$T/export2.stats"
topic_import import2 "$imp" --subscribers 2 --stats-file "$T/import2.stats"
for i in 1 2; do
	"${IN_A[@]}" "$PEER" sub "$imp" --count $count --max $max \
		--policy reliable --seconds 30 2>"$T/esub$i.log" &
	subs[$i]=$!
	PIDS+=($!)
done
in_b "$PEER" pub "$src" --count $count --max $max --ring $ring \
	--subscribers 1 --seconds 30 2>"$T/epub.log" ||
	fail "the publisher failed: $(cat "$T/epub.log")"
for i in 1 2; do
	wait_exit "${subs[$i]}" 15000
	[ "$RC" -eq 0 ] || fail "subscriber $i: $(cat "$T/esub$i.log")"
done
logged export2 "messages up to $max bytes" || fail "not the ring's largest message"
echo "  $count messages of 0 to $max bytes, each checked by both"

step "latest: the import stalls for 1 s; losses are counted, never torn"
stop_bridges
count=$((3000 / SCALE + 600))
topic_export export3 "$src" --stats-file "$T/export3.stats"
topic_import import3 "$imp" --subscribers 1 --stats-file "$T/import3.stats"
"${IN_A[@]}" "$PEER" sub "$imp" --count $count --max 4096 --fixed \
	--policy latest --seconds 40 --status "$T/lsub.n" 2>"$T/lsub.log" &
lsub=$!
PIDS+=($lsub)
"${IN_B[@]}" "$PEER" pub "$src" --count $count --max 4096 --fixed --latest \
	--ring 65536 --subscribers 1 --delay-us 1000 --seconds 40 \
	--status "$T/lpub.n" 2>"$T/lpub.log" &
lpub=$!
PIDS+=($lpub)
moving() { [ -s "$T/lsub.n" ] && [ "$(cut -d' ' -f1 "$T/lsub.n")" -ge 100 ]; }
wait_for moving
p0=$(cat "$T/lpub.n")
kill -STOP "$IPID"
sleep 1
p1=$(cat "$T/lpub.n")
kill -CONT "$IPID"
wait_exit $lpub 40000
[ "$RC" -eq 0 ] || fail "the latest publisher: $(cat "$T/lpub.log")"
wait_exit $lsub 15000
[ "$RC" -eq 0 ] || fail "the latest subscriber: $(cat "$T/lsub.log")"
sleep 1.1 # the stats files
read -r _ got gaps here < <(sed -n 's/.*received \([0-9]*\) gaps \([0-9]*\) lapped-here \([0-9]*\)/x \1 \2 \3/p' "$T/lsub.log")
xl=$(stat_of "$T/export3.stats" topic_lost)
il=$(stat_of "$T/import3.stats" topic_lost)
echo "  published $count ($((p1 - p0)) while the import stalled); received $got;"
echo "  missing $gaps = $il lapped before crossing (export says $xl) + $here lapped in A"
[ $((got + gaps)) -eq "$count" ] || fail "received + missing is not $count"
[ "$xl" -eq "$il" ] || fail "the export counted $xl losses, the import $il"
[ "$gaps" -eq $((il + here)) ] || fail "the losses do not add up"
# More than a window and both rings went by while the import stalled:
# some of it must have been lost (and counted).
(( (p1 - p0) * 4160 <= (1 << 20) + 2 * 65536 || gaps > 0 )) ||
	fail "nothing was lost while the import stalled"
logged export3 "lapped before they could be sent" || (( xl == 0 )) ||
	fail "the export did not log its losses"
stop_bridges
echo "ok"
