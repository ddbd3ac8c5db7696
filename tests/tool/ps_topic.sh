# evshm ps on a live topic: one publisher, two subscribers, each a test
# program of its own.  Pids, names, ring size and every counter as the
# processes report them; each subscriber's lag; one seen asleep.
#   bash ps_topic.sh EVSHM PEER_PS PEER_PS_HOSTILE
. "$(dirname "$0")/lib.sh"
P=${2:?usage: $0 evshm peer_ps peer_ps_hostile}
need_jq

step "a publisher, a subscriber that read everything (and waits), one that read 4 of 10"
n=$(unique_name topic)
bg_start "$T/pub" "$P" pub "$n" --ring=32768 --subs=2 --send=10 --size=48
pp=$BG
bg_start "$T/sub1" "$P" sub "$n" --recv=10 --size=48 --wait
s1=$BG
bg_start "$T/sub2" "$P" sub "$n" --recv=4 --size=48
s2=$BG
wait_ready "$T/pub"
wait_ready "$T/sub1"
wait_ready "$T/sub2"
# The first one then waits in the library for a message that never comes.
sub1_asleep() {
	ps_json --pid "$pp"
	[ "$(jqv '.topics[0].subscribers[]? | select(.pid == '"$s1"') | .asleep_for_data')" = true ]
}
wait_for sub1_asleep

ps_fields ".topics[0].publisher" "$T/got"
for k in pid msgs_sent bytes_sent kicks sleeps; do
	same "publisher $k" "$(reported "$T/got" "$k")" "$(reported "$T/pub" "$k")"
done
for s in 1 2; do
	pid=$(reported "$T/sub$s" pid)
	ps_fields ".topics[0].subscribers[] | select(.pid == $pid)" "$T/got"
	for k in pid pid_claimed msgs_recv bytes_recv kicks sleeps spins lost; do
		same "subscriber $s $k" "$(reported "$T/got" "$k")" "$(reported "$T/sub$s" "${k%_claimed}")"
	done
done
# 10 records of one size were published; the second subscriber released 4.
ps_expect --argjson pp "$pp" --argjson s1 "$s1" --argjson s2 "$s2" --arg n "$n" \
	--argjson uid "$(id -u)" -- \
	'one topic, no channel::(.topics | length == 1) and (.channels | length == 0)' \
	'paired by its id::.topics[0].ambiguous == false and
	 ([.topics[0].publisher.id] | length == 1)' \
	'the publisher::.topics[0].publisher | .pid == $pp and .role == "publisher"' \
	'two subscribers, those started::[.topics[0].subscribers[].pid] | sort == ([$s1, $s2] | sort)' \
	'roles::[.topics[0].subscribers[].role] == ["subscriber", "subscriber"]' \
	'names::.topics[0] | [.name, .publisher.name, .subscribers[].name] == [$n, $n, $n, $n]' \
	'ring size::.topics[0] | .ring_size == 32768 and .publisher.ring_size == 32768' \
	'a subscriber has no ring::[.topics[0].subscribers[].ring_size] == [null, null]' \
	'uids, commands::[.topics[0].publisher, .topics[0].subscribers[]] |
	 all(.uid == $uid and .command == "peer_ps")' \
	"the publisher's own count::.topics[0].publisher | .subscribers == 2 and .dropped == 0" \
	'messages and bytes published::.topics[0].publisher | .msgs_sent == 10 and .bytes_sent == 480' \
	'the first subscriber is caught up::.topics[0].subscribers[] | select(.pid == $s1) |
	 .lag == 0' \
	'the second lags by 6 records::.topics[0] | .publisher.tail as $t |
	 (.subscribers[] | select(.pid == $s2) | .lag == $t - .head and .lag == ($t / 10) * 6)' \
	'the first is asleep, waiting for data; the second not::.topics[0].subscribers[] |
	 select(.pid == $s1) | .asleep_for_data and .asleep_for_room == false' \
	'the second not::.topics[0].subscribers[] | select(.pid == $s2) | .asleep == false' \
	'no error::[.topics[0].publisher, .topics[0].subscribers[]] | all(.error == null)' \
	'no lag, fill for what it does not apply to::.topics[0].publisher |
	 .lag == null and .fill == null'

step "the same as text"
timeout 10 "$E" ps --pid "$pp" >"$T/ps.txt" || fail "evshm ps exited $?"
grep -q "^TOPIC $n " "$T/ps.txt" || fail "no topic title: $(cat "$T/ps.txt")"
[ "$(grep -c '^  subscriber ' "$T/ps.txt")" -eq 2 ] || fail "subscribers: $(cat "$T/ps.txt")"
grep -Eq "^  subscriber +$s1 .*asleep \(data\)" "$T/ps.txt" ||
	fail "the sleeping subscriber's row: $(cat "$T/ps.txt")"

step "--pid of a subscriber shows its whole topic"
ps_json --pid "$s1"
ps_expect -- 'the topic, both subscribers::(.topics | length == 1) and
	 (.topics[0].subscribers | length == 2) and .topics[0].publisher != null'
echo "ok"
