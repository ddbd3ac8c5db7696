# One local connect that stalls (a server that accepts the socket and
# never answers) must not hold up another session's open (loopback, no
# root).  The export's --timeout is 20 s, so the stalled connect lasts
# that long; the second session's channel must get through while it is
# still stalled (stall-server checks it: causal, not a timing); then the
# first client's channel ends (the server leaves, so the stalled connect
# fails and the export says CLOSE).
. "$(dirname "$0")/lib.sh"
STALL=$BUILD/bridge/tests/stall-server
srv=$(name srv)
ia=$(name ia)
ib=$(name ib)

"$STALL" "$srv" 60 2>"$T/stall.log" &
spid=$!
PIDS+=("$spid")
wait_for logged stall "listening"

ENDPOINT='tcp://127.0.0.1:*'
start_export export "$srv" --insecure --timeout 20
ENDPOINT=$(sed -n 's/.* on \(tcp:[^ ]*\) (insecure)$/\1/p' "$T/export.log")
[ -n "$ENDPOINT" ] || fail "no endpoint in the export's log"
start_import ia "$ia" --insecure --timeout 20
start_import ib "$ib" --insecure --timeout 20
wait_for at_least_up export 2

step "session A's open stalls at the server"
"$EVSHM" recv --connect "$ia" >/dev/null 2>"$T/client_a.log" &
ca=$!
PIDS+=("$ca")
wait_for logged stall "stalling the first client"

step "session B's open gets through meanwhile"
t0=$(now_ms)
# (evshm send fails: stall-server leaves after one message, unconfirmed)
(echo "through" | "$EVSHM" send --timeout 20 --connect "$ib") \
	2>"$T/client_b.log" &
PIDS+=($!)
# A hang bound below the stalled connect's 20 s: a second open queued
# behind the first would still be waiting.
wait_exit "$spid" 15000
[ "$RC" -eq 0 ] || fail "stall-server exited $RC"
echo "session B's channel through in $(($(now_ms) - t0)) ms"

step "session A's client fails once the server leaves"
wait_exit "$ca" $((20000 + SLACK_MS))
[ "$RC" -ne 0 ] || fail "session A's client succeeded"
logged export "cannot connect to $srv" || fail "the export did not log the failed connect"
echo "session A's client ended $ELAPSED_MS ms after B's open; the export said: $(grep -o 'cannot connect.*' "$T/export.log")"
stop_bridges
echo OK
