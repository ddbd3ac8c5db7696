# The bridges over loopback, without root or namespaces (plain TCP on an
# ephemeral port of 127.0.0.1): a checked transfer of every size and an
# `evshm send | recv` stream, a topic from `evshm pub` to two `evshm sub`,
# then a clean SIGTERM of both bridges.
. "$(dirname "$0")/lib.sh"
srv=$(name srv)
imp=$(name imp)

ENDPOINT='tcp://127.0.0.1:*'
start_export export "$srv" --insecure
ENDPOINT=$(sed -n 's/.* on \(tcp:[^ ]*\) (insecure)$/\1/p' "$T/export.log")
[ -n "$ENDPOINT" ] || fail "no endpoint in the export's log"
start_import import "$imp" --insecure
wait_for at_least_up import 1

step "$((1000 / SCALE + 2)) messages of 0 to 64 KiB"
"$PEER" recv "$srv" --count $((1000 / SCALE + 2)) --seconds 60 2>"$T/recv.log" &
r=$!
PIDS+=("$r")
wait_for listening_b "$srv"
"$PEER" send "$imp" --count $((1000 / SCALE + 2)) --seconds 60 2>"$T/send.log" ||
	fail "send: $(cat "$T/send.log")"
wait_exit $r
[ "$RC" -eq 0 ] || fail "recv: $(cat "$T/recv.log")"

bytes=$(( (64 << 20) / SCALE ))
step "evshm send | recv, $bytes bytes"
("$EVSHM" recv "$srv" | "$PEER" check $bytes) 2>"$T/pipe.log" &
r=$!
PIDS+=("$r")
wait_for listening_b "$srv"
"$PEER" gen $bytes | "$EVSHM" send "$imp" || fail "evshm send failed"
wait_exit $r
[ "$RC" -eq 0 ] || fail "recv | check: $(cat "$T/pipe.log")"
stop_bridges

bytes=$(( (8 << 20) / SCALE ))
step "a topic: evshm pub -> export -> import -> 2 x evshm sub, $bytes bytes"
src=$(name src)
ENDPOINT='tcp://127.0.0.1:*'
LOCAL_OPT=--topic start_export texport "$src" --insecure
ENDPOINT=$(sed -n 's/.* on \(tcp:[^ ]*\) (insecure)$/\1/p' "$T/texport.log")
LOCAL_OPT=--topic start_import timport "$imp" --insecure --subscribers 2
subs=()
for i in 1 2; do
	("$EVSHM" sub --wait --timeout 20 "$imp" | "$PEER" check $bytes) \
		2>"$T/sub$i.log" &
	subs+=($!)
	PIDS+=($!)
done
"$PEER" gen $bytes | "$EVSHM" pub --subscribers 1 --timeout 20 "$src" ||
	fail "evshm pub failed"
for r in "${subs[@]}"; do
	wait_exit "$r"
	[ "$RC" -eq 0 ] || fail "sub | check: $(cat "$T"/sub*.log)"
done
stop_bridges
echo "ok"
