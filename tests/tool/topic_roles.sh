# `evshm pub` / `evshm sub`: --subscribers N, --history K, who may be
# missing, an empty stream, a name already taken.
. "$(dirname "$0")/lib.sh"

has() { grep -q "$2" "$1" 2>/dev/null; }
# admitted PID N: has the publisher PID admitted N subscribers (its own
# count, as `evshm ps` reads it: a subscriber counted has its start)?
admitted() { timeout 10 "$E" ps --json --pid "$1" | grep -q "\"subscribers\":$2,"; }

step "nobody publishes: sub fails at once with status 3"
expect_rc 3 "$E" sub "$(unique_name none)"
start=$(date +%s%N)
expect_rc 3 "$E" sub --wait --timeout 0.5 "$(unique_name none)"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 450 ] || fail "--timeout 0.5 gave up after $ms ms"

step "--subscribers 2: the stream starts only when the second has joined"
head -c 3M /dev/urandom >"$T/in"
n=$(unique_name two)
"$E" pub --subscribers 2 --timeout 20 --stall-timeout 30 "$n" <"$T/in" &
p=$!
"$E" sub --wait --timeout 20 "$n" >"$T/two.1" &
s1=$!
sleep 0.3
"$E" sub --wait --timeout 20 "$n" >"$T/two.2" &
s2=$!
wait_rc $p; [ "$RC" -eq 0 ] || fail "pub exited $RC"
for s in $s1 $s2; do wait_rc "$s"; [ "$RC" -eq 0 ] || fail "a sub exited $RC"; done
cmp -s "$T/in" "$T/two.1" || fail "the first subscriber missed something"
cmp -s "$T/in" "$T/two.2" || fail "the second subscriber missed something"

# The sub must join within the publisher's --timeout: it is started first
# (--wait: it retries every 20 ms), and the bound is 2 s, not 0.5 (a busy
# machine took that long to admit it: "0 of 2 subscribers").
step "--subscribers 2 and only one comes: pub 3 after --timeout, the sub 1"
n=$(unique_name one)
"$E" sub --wait --timeout 20 "$n" 2>"$T/one.sub" &
s=$!
"$E" pub --subscribers 2 --timeout 2 "$n" </dev/null 2>"$T/one.err" &
p=$!
wait_rc $p; [ "$RC" -eq 3 ] || fail "pub exited $RC without its subscribers"
grep -q "1 of 2 subscribers" "$T/one.err" || fail "pub did not say so: $(cat "$T/one.err")"
wait_rc $s; [ "$RC" -eq 1 ] || fail "sub exited $RC without an end of stream"

step "an empty stream: every sub writes nothing and exits 0"
n=$(unique_name empty)
"$E" pub -n 2 --timeout 20 "$n" </dev/null &
p=$!
"$E" sub --wait "$n" >"$T/e1" &
s1=$!
"$E" sub --wait "$n" >"$T/e2" &
s2=$!
wait_rc $p; [ "$RC" -eq 0 ] || fail "pub exited $RC"
for s in $s1 $s2; do wait_rc "$s"; [ "$RC" -eq 0 ] || fail "a sub exited $RC"; done
[ ! -s "$T/e1" ] && [ ! -s "$T/e2" ] || fail "bytes out of nothing"

step "a live publisher's name is not taken; a channel's name is no topic"
n=$(unique_name busy)
mkfifo "$T/busy.in"
"$E" pub "$n" <"$T/busy.in" 3>&- &
p=$!
PIDS+=("$p")
exec 3>"$T/busy.in"
wait_for listening "$n"
expect_rc 3 "$E" pub "$n" </dev/null
expect_rc 3 "$E" recv "$n"
exec 3>&-
wait_rc $p; [ "$RC" -eq 0 ] || fail "pub exited $RC"
n=$(unique_name chan)
"$E" recv "$n" >/dev/null &
r=$!
wait_for listening "$n"
expect_rc 3 "$E" sub "$n"
echo -n | "$E" send "$n"
wait_rc $r

step "--history K: a late subscriber starts with the last K messages"
# Each line is one message: the next is written only once an early
# subscriber has it, i.e. once the publisher has published it.
n=$(unique_name hist)
mkfifo "$T/hist.in"
"$E" pub --subscribers 1 "$n" <"$T/hist.in" 2>"$T/hist.err" 3>&- &
p=$!
PIDS+=("$p")
exec 3>"$T/hist.in"
"$E" sub --wait --timeout 20 "$n" >"$T/early" 3>&- &
early=$!
for i in 1 2 3 4 5; do
	echo "line $i" >&3
	wait_for has "$T/early" "line $i"
done
"$E" sub --history 3 "$n" >"$T/k3" 3>&- &
k3=$!
"$E" sub --history 100 "$n" >"$T/all" 3>&- &
all=$!
"$E" sub "$n" >"$T/none" 3>&- &
none=$!
# Their history (or nothing) has arrived when they are subscribed; the
# one without history shows nothing: it is subscribed when the publisher
# counts four subscribers.
wait_for has "$T/k3" "line 5"
wait_for has "$T/all" "line 5"
wait_for admitted "$p" 4
for i in 6 7; do
	echo "line $i" >&3
	wait_for has "$T/early" "line $i"
done
exec 3>&-
wait_rc $p; [ "$RC" -eq 0 ] || fail "pub exited $RC: $(cat "$T/hist.err")"
for s in $early $k3 $all $none; do
	wait_rc "$s"; [ "$RC" -eq 0 ] || fail "a sub exited $RC"
done
[ "$(cat "$T/early")" = "$(seq -f 'line %g' 1 7)" ] || fail "the early subscriber: $(cat "$T/early")"
[ "$(cat "$T/k3")" = "$(seq -f 'line %g' 3 7)" ] || fail "--history 3: $(cat "$T/k3")"
[ "$(cat "$T/all")" = "$(seq -f 'line %g' 1 7)" ] || fail "--history 100: $(cat "$T/all")"
[ "$(cat "$T/none")" = "$(seq -f 'line %g' 6 7)" ] || fail "no history: $(cat "$T/none")"
echo "ok"
