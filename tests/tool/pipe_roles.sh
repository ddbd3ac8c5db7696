# Who listens, --wait and --timeout, an empty stream, small odd sizes.
. "$(dirname "$0")/lib.sh"

step "nobody listens: send fails at once with status 3"
expect_rc 3 "$E" send "$(unique_name none)" </dev/null
expect_rc 3 "$E" recv --connect "$(unique_name none)"

step "--wait --timeout gives up with status 3"
start=$(date +%s%N)
expect_rc 3 "$E" send --wait --timeout 0.5 "$(unique_name none)" </dev/null
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 450 ] || fail "--timeout 0.5 gave up after $ms ms"

step "a listener that nobody joins gives up with status 3"
expect_rc 3 "$E" recv --timeout 0.3 "$(unique_name lonely)"

step "a live listener's name is not taken: status 3"
n=$(unique_name busy)
("$E" recv "$n" >/dev/null) &
r=$!
wait_for listening "$n"
expect_rc 3 "$E" recv "$n"
echo -n | "$E" send "$n"
wait_rc $r; [ "$RC" -eq 0 ] || fail "recv failed"

step "an empty stream: recv writes nothing and exits 0"
n=$(unique_name empty)
("$E" recv "$n" >"$T/empty") &
r=$!
"$E" send --wait "$n" </dev/null || fail "send of nothing failed"
wait_rc $r; [ "$RC" -eq 0 ] || fail "recv failed"
[ "$(filesize "$T/empty")" -eq 0 ] || fail "bytes out of nothing"

step "send --listen, recv --connect --wait (roles swapped)"
n=$(unique_name swap)
head -c 100001 /dev/urandom >"$T/odd"
("$E" recv --connect --wait "$n" >"$T/odd.out") &
r=$!
"$E" send --listen --timeout 20 --chunk 4K --ring 16K "$n" <"$T/odd" ||
	fail "send --listen failed"
wait_rc $r; [ "$RC" -eq 0 ] || fail "recv --connect failed"
cmp -s "$T/odd" "$T/odd.out" || fail "data differs with swapped roles"

step "short reads: a slow writer on stdin"
n=$(unique_name slow)
("$E" recv "$n" >"$T/slow.out") &
r=$!
(for i in 1 2 3 4 5; do echo "line $i"; sleep 0.05; done) | "$E" send --wait "$n"
wait_rc $r; [ "$RC" -eq 0 ] || fail "recv failed"
[ "$(wc -l <"$T/slow.out")" -eq 5 ] || fail "lines lost"
echo "ok"
