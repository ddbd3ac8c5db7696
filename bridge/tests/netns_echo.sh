# The C examples, unchanged, across hosts: examples/echo-server in one
# namespace, many examples/echo-client at once in the other, each through
# the import -> export bridges on its own channel.  Every client checks
# every echo; the server counts them all.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
srv=$(name echo)
imp=$(name imp)
clients=32
msgs=$((2000 / SCALE + 10))

"${IN_B[@]}" "$EXAMPLES/echo-server" "$srv" >"$T/server.log" 2>&1 &
spid=$!
PIDS+=("$spid")
wait_for listening_b "$srv"
secure_export export "$srv" --stats-file "$T/export.stats"
secure_import import "$imp" --stats-file "$T/import.stats"
wait_for logged import " up$"

step "$clients echo clients at once, $msgs messages each, up to 512 bytes"
cpids=()
for ((i = 0; i < clients; i++)); do
	"${IN_A[@]}" "$EXAMPLES/echo-client" "$imp" --n=$msgs --window=16 \
		--quiet 2>"$T/client-$i.log" &
	cpids+=($!)
	PIDS+=($!)
done
for ((i = 0; i < clients; i++)); do
	wait_exit "${cpids[$i]}" 90000
	[ "$RC" -eq 0 ] || fail "echo-client $i exited $RC: $(cat "$T/client-$i.log")"
done

step "the server saw $clients clients come and go; nothing lost"
wait_for grep -q "^streams_open 0$" "$T/export.stats"
kill -TERM "$spid"
wait_exit "$spid" 10000
grep -q "stopped: $clients clients served, 0 refused, $((clients * msgs)) messages" \
	"$T/server.log" || fail "server: $(tail -1 "$T/server.log")"
for f in import export; do
	# The files are rewritten once a second.
	wait_for grep -q "^streams_total $clients$" "$T/$f.stats"
	wait_for grep -q "^streams_open 0$" "$T/$f.stats"
	[ "$(stat_of "$T/$f.stats" msgs_lost)" -eq 0 ] || fail "$f lost messages"
	[ "$(stat_of "$T/$f.stats" streams_failed)" -eq 0 ] || fail "$f: failed channels"
done
stop_bridges
echo "ok"
