# `evshm send | recv` across two network namespaces through an import and
# an export bridge (CURVE): 1 GiB arrives byte-exact (divided by
# EVSHM_TEST_SCALE in sanitizer runs), and the counters agree.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys

bytes=$((1024 * 1024 * 1024 / SCALE))
srv=$(name srv)
imp=$(name imp)

step "$bytes bytes: evshm send (A) -> import -> export -> evshm recv (B)"
(in_b "$EVSHM" recv "$srv" | "$PEER" check "$bytes") 2>"$T/recv.log" &
rpid=$!
PIDS+=("$rpid")
secure_export export "$srv" --stats-file "$T/export.stats"
secure_import import "$imp" --stats-file "$T/import.stats"
wait_for logged import " up$"
t0=$(now_ms)
"$PEER" gen "$bytes" | in_a "$EVSHM" send --wait --timeout 10 "$imp" 2>"$T/send.log" ||
	fail "evshm send failed"
wait_exit $rpid 60000
[ "$RC" -eq 0 ] || fail "recv or the byte check failed ($RC)"
ms=$(($(now_ms) - t0))
echo "moved $bytes bytes in $ms ms"

step "the bridges' counters: every byte, nothing lost, nothing refused"
stop_bridges
# The stream: the data messages, the end marker, then the count back.
out=$(stat_of "$T/import.stats" bytes_out)
in=$(stat_of "$T/export.stats" bytes_in)
[ "$out" -eq "$bytes" ] || fail "import sent $out payload bytes, not $bytes"
[ "$in" -eq "$bytes" ] || fail "export delivered $in payload bytes, not $bytes"
for f in import export; do
	for k in msgs_lost fds_refused protocol_errors streams_failed; do
		v=$(stat_of "$T/$f.stats" $k)
		[ "$v" -eq 0 ] || fail "$f: $k is $v"
	done
done
logged import "local client connected" || fail "no connect logged"
logged export "connected to $srv" || fail "no local connect logged"
echo "ok"
