# A receiver whose confirmation is not the 8-byte count `evshm send`
# expects: send exits 1 and says what it got, never a count made of bytes
# the receiver did not send.  (`bash pipe_ack.sh evshm peer_ack`)
. "$(dirname "$0")/lib.sh"
A=${2:?usage: $0 /path/to/evshm /path/to/peer_ack}

# ack LEN: the message send prints for a confirmation of LEN bytes.
ack() {
	local n; n=$(unique_name "ack$1")
	"$A" "$n" "$1" > "$T/peer.out" &
	local peer=$!; PIDS+=("$peer")
	rc=0
	printf 'eleven byte' | "$E" send --wait --timeout 10 "$n" 2> "$T/err" || rc=$?
	wait_rc "$peer"
	[ "$RC" -eq 0 ] || fail "peer_ack $1 exited $RC"
	[ "$rc" -eq "$2" ] || fail "send with a $1-byte confirmation exited $rc, expected $2: $(cat "$T/err")"
	cat "$T/err"
}

step "an honest 8-byte confirmation: exit 0"
ack 8 0

for len in 0 3 7 9 64; do
	step "a $len-byte confirmation: exit 1, and no count made up"
	out=$(ack "$len" 1)
	echo "$out"
	echo "$out" | grep -q "confirmation of $len bytes, not the 8-byte count" ||
		fail "send does not say the confirmation is $len bytes: $out"
	echo "$out" | grep -q "confirmed [0-9]* bytes" &&
		fail "send reads a count out of a $len-byte confirmation: $out"
done
echo "ok"
