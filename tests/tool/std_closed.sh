# Started with stdin, stdout or stderr closed (`<&-`, `>&-`): the
# descriptors the library opens must not take their numbers, or send and
# pub would read their own socket as stdin and recv and sub write the
# stream into it (and exit 0).  A closed stdin is a read error (exit 4),
# a closed stdout a write error (exit 4), as for any other program.
. "$(dirname "$0")/lib.sh"

step "sub with stdout closed: exit 4, nothing written into its socket"
n=$(unique_name sub)
(echo hello; sleep 0.5; echo world) | "$E" pub -n 1 --timeout 20 "$n" 2> "$T/pub.err" &
pub=$!; PIDS+=("$pub")
rc=0; "$E" sub --wait --timeout 20 "$n" >&- 2> "$T/sub.err" || rc=$?
[ "$rc" -eq 4 ] || fail "sub with stdout closed exited $rc, expected 4: $(cat "$T/sub.err")"
grep -q "writing stdout" "$T/sub.err" || fail "sub does not say why: $(cat "$T/sub.err")"
wait_rc "$pub"
[ "$RC" -eq 0 ] || fail "pub exited $RC: $(cat "$T/pub.err")"

step "recv with stdout closed: exit 4; send exits 1"
n=$(unique_name recv)
"$E" recv --timeout 20 "$n" >&- 2> "$T/recv.err" &
recv=$!; PIDS+=("$recv")
rc=0; echo hello | "$E" send --wait --timeout 20 "$n" 2> "$T/send.err" || rc=$?
wait_rc "$recv"
[ "$RC" -eq 4 ] || fail "recv with stdout closed exited $RC, expected 4: $(cat "$T/recv.err")"
[ "$rc" -eq 1 ] || fail "send exited $rc, expected 1: $(cat "$T/send.err")"

step "send with stdin closed: exit 4; recv exits 1"
n=$(unique_name send)
"$E" recv --timeout 20 "$n" > "$T/out" 2> "$T/recv.err" &
recv=$!; PIDS+=("$recv")
rc=0; "$E" send --wait --timeout 20 "$n" <&- 2> "$T/send.err" || rc=$?
[ "$rc" -eq 4 ] || fail "send with stdin closed exited $rc, expected 4: $(cat "$T/send.err")"
grep -q "reading stdin" "$T/send.err" || fail "send does not say why: $(cat "$T/send.err")"
wait_rc "$recv"
[ "$RC" -eq 1 ] || fail "recv exited $RC, expected 1: $(cat "$T/recv.err")"

step "pub with stdin closed: exit 4; sub exits 1"
n=$(unique_name pub)
"$E" sub --wait --timeout 20 "$n" > "$T/out" 2> "$T/sub.err" &
sub=$!; PIDS+=("$sub")
rc=0; "$E" pub -n 1 --timeout 20 "$n" <&- 2> "$T/pub.err" || rc=$?
[ "$rc" -eq 4 ] || fail "pub with stdin closed exited $rc, expected 4: $(cat "$T/pub.err")"
wait_rc "$sub"
[ "$RC" -eq 1 ] || fail "sub exited $RC, expected 1: $(cat "$T/sub.err")"

step "recv with stderr closed: the stream still arrives whole"
n=$(unique_name err)
"$E" recv --timeout 20 "$n" > "$T/out" 2>&- &
recv=$!; PIDS+=("$recv")
printf 'all of it' | "$E" send --wait --timeout 20 "$n"
wait_rc "$recv"
[ "$RC" -eq 0 ] || fail "recv with stderr closed exited $RC"
[ "$(cat "$T/out")" = "all of it" ] || fail "recv wrote '$(cat "$T/out")'"
echo "ok"
