# Descriptor limits (loopback, no root): the bridge raises its soft
# RLIMIT_NOFILE to the hard limit; with defaults that the hard limit
# cannot cover, it lowers them to what fits and says so (and they hold:
# a second session, a fourth channel, refused); limits given on the
# command line that cannot be met, it refuses to start (exit 1).
. "$(dirname "$0")/lib.sh"
command -v prlimit >/dev/null || skip "needs prlimit (util-linux)"
srv=$(name srv)
imp=$(name imp)
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=$(cat /proc/sys/fs/nr_open)
soft_of() { awk '/^Max open files/ {print $4}' "/proc/$1/limits"; }

step "given limits beyond a hard limit of 1024: refused"
expect_rc 1 timeout 10 prlimit --nofile=1024:1024 "$BRIDGE" export --local "$srv" \
	--bind 'tcp://127.0.0.1:*' --insecure --max-sessions 64
grep -q "need about [0-9]* descriptors, and the limit is 1024" "$T/out.txt" ||
	fail "no clear message: $(cat "$T/out.txt")"
expect_rc 1 timeout 10 prlimit --nofile=1024:1024 "$BRIDGE" import --local "$imp" \
	--connect tcp://127.0.0.1:1 --insecure --max-channels 256
grep -q "need about [0-9]* descriptors" "$T/out.txt" ||
	fail "no clear message: $(cat "$T/out.txt")"

step "defaults under a hard limit of 256: one session (export)"
"$EXAMPLES/echo-server" "$srv" >/dev/null 2>&1 &
PIDS+=($!)
wait_for listening_b "$srv"
ENDPOINT='tcp://127.0.0.1:*'
IN_B=(prlimit --nofile=256:256)
start_export export "$srv" --insecure
IN_B=()
ENDPOINT=$(sed -n 's/.* on \(tcp:[^ ]*\) (insecure)$/\1/p' "$T/export.log")
logged export "serving at most 1 session of up to 22 channels" ||
	fail "the export did not say what it lowered"
start_import import "$imp" --insecure
imp1=$IPID
wait_for at_least_up import 1
start_import import2 "$(name imp2)" --insecure
wait_for logged export "refused an import .*: 1 sessions (--max-sessions)"

step "defaults under a hard limit of 128: three channels (import)"
stop_bridge "$imp1"
IN_A=(prlimit --nofile=128:128)
start_import import3 "$imp" --insecure
IN_A=()
logged import3 "serving at most 1 session of up to 3 channels" ||
	fail "the import did not say what it lowered"
wait_for at_least_up import3 1
opens() { [ "$(grep -c ': open (' "$T/import3.log")" -ge "$1" ]; }
for i in 1 2 3 4; do
	"$EVSHM" recv --connect "$imp" >/dev/null 2>"$T/client$i.log" &
	PIDS+=($!)
	((i == 4)) || wait_for opens "$i"
done
wait_for logged import3 "refused a local client: 3 channels are open"

step "the soft limit is raised to the hard limit ($hard)"
IN_A=(prlimit --nofile=512:"$hard")
start_import import4 "$(name imp4)" --insecure
IN_A=()
[ "$(soft_of "$IPID")" = "$hard" ] ||
	fail "soft limit $(soft_of "$IPID"), hard $hard"
stop_bridges
echo OK
