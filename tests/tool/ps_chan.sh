# evshm ps on live channels: what it shows of each end is what the two
# processes say of themselves (pids, names, ring sizes, every counter), and
# a side's sticky error comes with the check that fired.
#   bash ps_chan.sh EVSHM PEER_PS PEER_PS_HOSTILE
. "$(dirname "$0")/lib.sh"
P=${2:?usage: $0 evshm peer_ps peer_ps_hostile}
H=${3:?usage: $0 evshm peer_ps peer_ps_hostile}
need_jq

step "two CLI processes, a slow consumer: evshm send fills the ring and sleeps"
n=$(unique_name cli)
mkfifo "$T/slow"
exec 3<>"$T/slow"    # a reader that never reads: recv blocks writing
head -c 1M /dev/zero >"$T/in"
bg_start "$T/slow" "$E" recv "$n"
r=$BG
wait_for listening "$n"
# A listener has no region yet: often nothing at all for ps to find.
ps_json --name "$n"
ps_expect -- "no channel yet::.channels | length == 0"
"$E" send --ring 64K "$n" <"$T/in" &
s=$!
PIDS+=("$s")
# Until the two ends stand still: the client asleep for room, the receiver
# awake (it waits in write, not in the library), and nothing moved since
# the sample before.  The client's kick can take long to wake a receiver
# on a busy machine: between the two, the receiver is still asleep.
last=
settled() {
	local now
	ps_json --name "$n"
	now=$(jqv '.channels[0] | [.client.asleep_for_room, .server.asleep,
		.client.tail, .server.head, .server.msgs_recv] | @text')
	[ "$now" = "$last" ] && [ "$(jqv '.channels[0] |
		.client.asleep_for_room and .server.asleep == false')" = true ] && return 0
	last=$now
	return 1
}
wait_for settled
ps_expect --argjson s "$s" --argjson r "$r" --arg n "$n" --argjson uid "$(id -u)" -- \
	"one channel::.channels | length == 1" \
	'client pid::.channels[0].client.pid == $s' \
	'server pid::.channels[0].server.pid == $r' \
	'names::.channels[0] | [.name, .client.name, .server.name] == [$n, $n, $n]' \
	'command::.channels[0] | [.client.command, .server.command] == ["evshm", "evshm"]' \
	'uid::.channels[0] | [.client.uid, .server.uid] == [$uid, $uid]' \
	'client ring (--ring 64K)::.channels[0].client.ring_size == 65536' \
	"the sender's ring holds what the receiver has not released::.channels[0] |
	 .client.fill > 0 and .client.fill <= 65536 and
	 .client.fill == .client.tail - .server.head" \
	'counters agree each way::.channels[0] | .client.msgs_sent >= 1 and
	 .client.bytes_sent > 0 and .server.msgs_recv <= .client.msgs_sent and
	 .server.bytes_recv <= .client.bytes_sent' \
	'no error::.channels[0] | .client.error == null and .server.error == null' \
	'the receiver is not asleep (it waits in write)::.channels[0].server.asleep == false'
timeout 10 "$E" ps --name "$n" >"$T/ps.txt" || fail "evshm ps exited $?"
grep -q "^CHANNEL $n " "$T/ps.txt" || fail "no channel title: $(cat "$T/ps.txt")"
grep -Eq "^  client +$s .*asleep \(room\)" "$T/ps.txt" ||
	fail "the client's row: $(cat "$T/ps.txt")"
kill "$s" "$r"
exec 3>&-

step "two test programs, figures compared exactly"
n=$(unique_name exact)
bg_start "$T/srv" "$P" server "$n" --ring=8192 --recv=3 --send=2
sp=$BG
bg_start "$T/cli" "$P" client "$n" --ring=16384 --send=5 --recv=2
cp=$BG
wait_ready "$T/srv"
wait_ready "$T/cli"
ps_json --pid "$sp,$cp"
for side in client server; do
	f=$T/cli; [ $side = server ] && f=$T/srv
	ps_fields ".channels[0].$side" "$T/got"
	for k in pid pid_claimed msgs_sent bytes_sent msgs_recv bytes_recv kicks sleeps spins lost; do
		same "$side $k" "$(reported "$T/got" "$k")" "$(reported "$f" "${k%_claimed}")"
	done
done
# 5 records of one size went into the client's ring, 3 were released.
ps_expect --argjson sp "$sp" --argjson cp "$cp" -- \
	"one channel::.channels | length == 1 and .[0].ambiguous == false" \
	'the pids are those of the processes started::.channels[0] |
	 [.client.pid, .server.pid] == [$cp, $sp]' \
	'ring sizes::.channels[0] | [.client.ring_size, .server.ring_size] == [16384, 8192]' \
	"the client's ring holds the 2 messages not received::.channels[0] |
	 .client.fill == .client.tail - .server.head and
	 .client.fill == (.client.tail / 5) * 2" \
	"the server's ring is empty::.channels[0].server.fill == 0" \
	'no error, nobody asleep::.channels[0] | [.client, .server] |
	 all(.error == null and .asleep == false)' \
	'commands::.channels[0] | [.client.command, .server.command] == ["peer_ps", "peer_ps"]'

step "--watch: rates per second, zero on a channel that stands still"
timeout 10 "$E" ps --json --watch 0.1 --iterations 3 --pid "$sp" >"$T/watch.json" ||
	fail "evshm ps --watch exited $?"
jq -se 'length == 3 and .[0].interval == 0.1 and
	.[0].channels[0].client.rates == null and
	(.[2].channels[0] | [.client.rates, .server.rates] |
	 all(.[]; . != null and (to_entries | all(.value == 0))))' \
	"$T/watch.json" >/dev/null || fail "samples and rates: $(cat "$T/watch.json")"
timeout 10 "$E" top --iterations 2 --watch 0.1 --pid "$sp" >"$T/top.txt" ||
	fail "evshm top exited $?"
[ "$(grep -c '^CHANNEL ' "$T/top.txt")" -eq 2 ] || fail "evshm top: $(cat "$T/top.txt")"
kill "$sp" "$cp"

step "a sticky error, with the check that fired"
n=$(unique_name sticky)
bg_start "$T/bad-srv" "$P" server "$n" --recv=4
bs=$BG
bg_start "$T/bad-cli" "$H" corrupt "$n" --send=3
bc=$BG
wait_ready "$T/bad-srv"
wait_ready "$T/bad-cli"
same "the server's own error" "$(reported "$T/bad-srv" error)" EPROTO
reason=$(reported "$T/bad-srv" reason)
[ -n "$reason" ] || fail "the server gave no reason"
ps_json --pid "$bs"
ps_expect --arg reason "$reason" -- \
	'the error::.channels[0].server.error.name == "EPROTO"' \
	'its reason, as the server says::.channels[0].server.error.reason == $reason' \
	'the corrupting side has none::.channels[0].client.error == null' \
	'what came before it was received::.channels[0].server.msgs_recv == 3'
timeout 10 "$E" ps --pid "$bs" >"$T/ps.txt" || fail "evshm ps exited $?"
grep -F "$reason" "$T/ps.txt" | grep -q "^ *error " ||
	fail "no error line: $(cat "$T/ps.txt")"
echo "ok"
