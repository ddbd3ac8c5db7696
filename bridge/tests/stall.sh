# Local connects that stall (a server that accepts the socket and never
# answers) must not hold up another session's open (loopback, no root).
# Session A opens four channels, as many connects as one session may run
# at once, and all four stall: they hold the export's four first connector
# threads.  The export's --timeout is 20 s, so the stalled connects last
# that long; session B's channel must get through while they are still
# stalled (stall-server checks it: causal, not a timing), on a thread
# started for it; then A's clients end (the server leaves, so the stalled
# connects fail and the export says CLOSE).
. "$(dirname "$0")/lib.sh"
STALL=$BUILD/bridge/tests/stall-server
srv=$(name srv)
ia=$(name ia)
ib=$(name ib)

NSTALL=4 # CONNECTOR_PER_GROUP, and CONNECTOR_THREADS
"$STALL" "$srv" 60 $NSTALL 2>"$T/stall.log" &
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

step "session A's $NSTALL opens stall at the server"
ca=()
for i in $(seq $NSTALL); do
	"$EVSHM" recv --connect "$ia" >/dev/null 2>"$T/client_a$i.log" &
	ca+=($!)
	PIDS+=($!)
done
wait_for logged stall "stalling client $NSTALL"

step "session B's open gets through meanwhile"
t0=$(now_ms)
# (evshm send fails: stall-server leaves after one message, unconfirmed)
(echo "through" | "$EVSHM" send --timeout 20 --connect "$ib") \
	2>"$T/client_b.log" &
PIDS+=($!)
# A hang bound below the stalled connects' 20 s: an open queued behind
# them would still be waiting.
wait_exit "$spid" 15000
[ "$RC" -eq 0 ] || fail "stall-server exited $RC"
echo "session B's channel through in $(($(now_ms) - t0)) ms"

step "session A's clients fail once the server leaves"
for p in "${ca[@]}"; do
	wait_exit "$p" $((20000 + SLACK_MS))
	[ "$RC" -ne 0 ] || fail "a client of session A succeeded"
done
logged export "cannot connect to $srv" || fail "the export did not log the failed connect"
echo "session A's clients ended, the last $ELAPSED_MS ms after B's open; the export logged $(grep -c 'cannot connect' "$T/export.log") failed connects"
stop_bridges
echo OK
