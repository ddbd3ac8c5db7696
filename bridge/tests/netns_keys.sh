# Security: CURVE is the default; the export admits only the keys on its
# allow-list, the import only the export whose key it pinned, plain TCP
# only with --insecure on both sides.  Each refusal is logged on both
# sides, and the refused import's local clients fail instead of waiting.
. "$(dirname "$0")/lib.sh"
netns_setup
make_keys
"$BRIDGE" keygen "$T/stranger" >/dev/null
srv=$(name srv)

secure_export export "$srv" --stats-file "$T/export.stats"

# through IMPORT_NAME: one short transfer via the import listening there;
# 0 if it worked.
through() {
	"${IN_B[@]}" "$PEER" recv "$srv" --count 50 --seconds 10 \
		2>"$T/recv-$1.log" &
	local r=$! rc=0
	PIDS+=("$r")
	wait_for listening_b "$srv"
	in_a "$PEER" send "$(name "$1")" --count 50 --seconds 10 \
		2>"$T/send-$1.log" || rc=$?
	kill "$r" 2>/dev/null || true
	wait "$r" 2>/dev/null || true
	return $rc
}

step "the right keys: a session, a transfer"
secure_import good "$(name good)"
wait_for at_least_up good 1
through good || fail "the good import could not carry a channel"

step "a client key not on the allow-list: refused and logged on both sides"
start_import stranger "$(name stranger)" --key "$T/stranger.key" \
	--server-key "$T/exp.pub"
wait_for logged_f export "its key $(awk '/^public-key/ {print $2}' "$T/stranger.pub") is not in the allow-list"
wait_for logged stranger "the export refused this bridge's key"
t=$(now_ms)
! through stranger || fail "a channel crossed with a refused key"
(( $(now_ms) - t <= BOUND_MS + SLACK_MS )) || fail "its client waited too long"
grep -q "peer has gone" "$T/send-stranger.log" || fail "$(cat "$T/send-stranger.log")"
wait_for logged stranger "(1 channel closed)\|no session with the export within"

step "a wrong pinned server key: the import refuses the export"
start_import pinned "$(name pinned)" --key "$T/imp.key" \
	--server-key "$T/stranger.pub"
wait_for logged pinned "CURVE handshake failed: the export does not hold the key given with --server-key"
wait_for logged export "handshake failed"
! through pinned || fail "a channel crossed to an unpinned export"

step "plain TCP against a CURVE export: refused"
start_import plain "$(name plain)" --insecure
wait_for logged plain "handshake failed"
! through plain || fail "a channel crossed in plain TCP"
wait_for grep -q "^sessions_refused [1-9]" "$T/export.stats"
[ "$(stat_of "$T/export.stats" sessions_up)" -eq 1 ] ||
	fail "the export has $(stat_of "$T/export.stats" sessions_up) sessions, not 1"

step "a secret key others may read is refused at start"
chmod 644 "$T/imp.key"
rc=0
in_a "$BRIDGE" import --local "$(name loose)" --connect "$ENDPOINT" \
	--key "$T/imp.key" --server-key "$T/exp.pub" 2>"$T/loose.log" || rc=$?
[ "$rc" -eq 1 ] || fail "started with a readable secret key ($rc)"
logged loose "must not be readable by group or others" || fail "$(cat "$T/loose.log")"
stop_bridges
echo "ok"
