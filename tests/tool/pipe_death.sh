# A side that dies mid-stream: the other exits non-zero with a message.
. "$(dirname "$0")/lib.sh"

step "sender killed mid-stream: recv exits 1 and says so"
n=$(unique_name ks)
("$E" recv "$n" >"$T/ks.out" 2>"$T/ks.err") &
r=$!
"$E" send --wait "$n" </dev/zero &
s=$!
PIDS+=("$s")
wait_for test -s "$T/ks.out"
kill -9 "$s"
wait_rc $r; rc=$RC
[ "$rc" -eq 1 ] || fail "recv exited $rc after its sender died"
grep -q "sender went away before the end" "$T/ks.err" ||
	fail "recv gave no clear message: $(cat "$T/ks.err")"

# Killed only once data has come through (the first byte it wrote): a
# receiver killed before the sender connected is no death mid-stream.
step "receiver killed mid-stream: send exits 1 and says so"
n=$(unique_name kr)
mkfifo "$T/kr.pipe"
"$E" recv "$n" >"$T/kr.pipe" &
r=$!
PIDS+=("$r")
(head -c 1 >"$T/kr.first"; cat >/dev/null) <"$T/kr.pipe" &
PIDS+=("$!")
wait_for listening "$n"
("$E" send "$n" </dev/zero 2>"$T/kr.err") &
s=$!
wait_for test -s "$T/kr.first"
kill -9 "$r"
wait_rc $s; rc=$RC
[ "$rc" -eq 1 ] || fail "send exited $rc after its receiver died"
grep -q "receiver went away" "$T/kr.err" ||
	fail "send gave no clear message: $(cat "$T/kr.err")"

# One byte, then nothing: once it is out of recv, the two have met and
# send waits on its stdin.
step "receiver killed while send waits on an idle stdin"
n=$(unique_name ki)
"$E" recv "$n" >"$T/ki.out" &
r=$!
PIDS+=("$r")
wait_for listening "$n"
mkfifo "$T/idle"
exec 3<>"$T/idle"   # a stdin that never ends and has one byte
("$E" send "$n" <"$T/idle" 2>"$T/ki.err") &
s=$!
printf x >&3
wait_for test -s "$T/ki.out"
kill -9 "$r"
wait_rc $s; rc=$RC
exec 3>&-
[ "$rc" -eq 1 ] || fail "send exited $rc after its receiver died"

step "stdout closed early: recv ends by SIGPIPE, send exits 1"
n=$(unique_name sp)
(set +e; "$E" recv "$n" | head -c 1000 >/dev/null; echo "${PIPESTATUS[0]}" >"$T/sp.rc") &
r=$!
rc=0
"$E" send --wait "$n" </dev/zero 2>/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "send exited $rc when recv's stdout closed"
wait_rc $r
[ "$(cat "$T/sp.rc")" -eq 141 ] || fail "recv exited $(cat "$T/sp.rc"), not by SIGPIPE"
echo "ok"
