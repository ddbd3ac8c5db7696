# Unauthenticated connections that say nothing, more than the export has
# descriptors for (loopback, no root): while they hold every descriptor
# (each for at most its handshake time, --timeout; the kernel's backlog
# refills them), libzmq cannot accept and retries at once, each failure
# an event of the socket's monitor.  The export's own thread must not
# spin on those events, nor log a line per failed handshake (at most one
# a second, with a count of the others); once the connections are gone,
# an honest import gets its session, and the export stops cleanly.
. "$(dirname "$0")/lib.sh"
CONNS=100
srv=$(name srv)
imp=$(name imp)
make_keys

step "export with 64 descriptors, $CONNS silent connections"
ENDPOINT='tcp://127.0.0.1:*'
IN_B=(prlimit --nofile=64:64)
secure_export export "$srv"
IN_B=()
ENDPOINT=$(sed -n 's/.* on \(tcp:[^ ]*\) (CURVE)$/\1/p' "$T/export.log")
port=${ENDPOINT##*:}
[ -n "$port" ] || fail "no endpoint in the export's log"
conns=()
for ((i = 0; i < CONNS; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "connection $i refused"
	conns+=("$fd")
done
sleep 0.5
[ "$(fd_count "$XPID")" -ge 60 ] || fail "the export has $(fd_count "$XPID") descriptors: not exhausted"

# The export's main thread (its pid), CPU time over one second, in ticks.
ticks() { awk '{print $14 + $15}' "/proc/$XPID/task/$XPID/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep 1
used=$(($(ticks) - t0))
echo "export's thread: $used of $hz ticks in 1 s, descriptors exhausted"
# Not a rate: a spin takes what the CPUs give it (all of one when they
# are idle, 30 to 40 % under a load average of 10 here); an idle loop
# next to none.
((used < hz / 10)) || fail "the export's thread spins while its descriptors are exhausted ($used of $hz ticks)"

for fd in "${conns[@]}"; do exec {fd}>&-; done
step "an import gets its session afterwards"
secure_import import "$imp"
wait_for at_least_up import 1
stop_bridges
lines=$(grep -c 'handshake failed' "$T/export.log" || true)
held=$(sed -n 's/.*and \([0-9]*\) more like it.*/\1/p; s/.* \([0-9]*\) more refusals in the second.*/\1/p' "$T/export.log" |
	awk '{n += $1} END {print n + 0}')
echo "handshake failures: $lines lines, $held more counted in them"
# The test lasts about 3 s: a line a second, and the first.
((lines <= 6)) || fail "$lines lines for $CONNS failed handshakes"
((lines + held >= CONNS)) || fail "only $((lines + held)) of $CONNS failed handshakes logged or counted"
echo OK
