# Descriptor limits (loopback, no root): the bridge raises its soft
# RLIMIT_NOFILE to the hard limit; when that cannot cover its sessions x
# channels it still starts, says how many channels it carries at once,
# and holds to it: an export refuses (EMFILE) the channel past that
# number, whichever session asks, and takes one again once another has
# closed; an import refuses the local client past it.
. "$(dirname "$0")/lib.sh"
command -v prlimit >/dev/null || skip "needs prlimit (util-linux)"
srv=$(name srv)
imp=$(name imp)
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=$(cat /proc/sys/fs/nr_open)
soft_of() { awk '/^Max open files/ {print $4}' "/proc/$1/limits"; }

"$EXAMPLES/echo-server" "$srv" >/dev/null 2>&1 &
PIDS+=($!)
wait_for listening_b "$srv"
ENDPOINT='tcp://127.0.0.1:*'

step "limits beyond a hard limit of 1024: served, and said so"
IN_B=(prlimit --nofile=1024:1024)
start_export big "$srv" --insecure --max-sessions 64 --max-channels 256
IN_B=()
logged big "serving at most 92 channels at once" ||
	fail "the export did not say what it carries: $(cat "$T/big.log")"
stop_bridge "$XPID"

step "an export under a hard limit of 128: two sessions, 4 channels between them"
IN_B=(prlimit --nofile=128:128)
start_export export "$srv" --insecure
IN_B=()
ENDPOINT=$(sed -n 's/.* on \(tcp:[^ ]*\) (insecure)$/\1/p' "$T/export.log")
logged export "serving at most 4 channels at once" ||
	fail "the export did not say what it carries: $(cat "$T/export.log")"
imp2=$(name imp2)
start_import import "$imp" --insecure
start_import import2 "$imp2" --insecure
wait_for at_least_up export 2
connected() { [ "$(grep -c 'connected to ' "$T/export.log")" -ge "$1" ]; }
clients=()
client() { # client N NAME: a channel through the import at NAME
	"$EVSHM" recv --connect "$2" >/dev/null 2>"$T/client$1.log" &
	PIDS+=($!)
	clients[$1]=$!
}
for i in 1 2 3 4; do
	if ((i <= 2)); then client "$i" "$imp"; else client "$i" "$imp2"; fi
	wait_for connected "$i"
done
client 5 "$imp2"
wait_for logged export "refused: 4 channels are open, all that the descriptor limit carries"
wait_exit "${clients[5]}" 20000
[ "$RC" -ne 0 ] || fail "the refused client exited 0"
kill "${clients[1]}"
# Its slot counts until both CLOSEs have passed: an OPEN that comes with
# the CLOSE is refused (a client then tries again).  So the next client
# starts once the export has seen the far end close.
wait_for logged export "channel 1 (pid [0-9]*): the far end closed"
client 6 "$imp"
wait_for connected 5

step "an import under a hard limit of 128: 4 channels"
IN_A=(prlimit --nofile=128:128)
imp3=$(name imp3)
start_import import3 "$imp3" --insecure --max-channels 256
IN_A=()
logged import3 "serving at most 4 channels at once" ||
	fail "the import did not say what it carries: $(cat "$T/import3.log")"
wait_for at_least_up import3 1

step "the soft limit is raised to the hard limit ($hard)"
IN_A=(prlimit --nofile=512:"$hard")
start_import import4 "$(name imp4)" --insecure
IN_A=()
[ "$(soft_of "$IPID")" = "$hard" ] ||
	fail "soft limit $(soft_of "$IPID"), hard $hard"
stop_bridges
echo OK
