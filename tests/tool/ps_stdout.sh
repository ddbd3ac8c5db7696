# evshm ps / top whose stdout fails: exit 4 with a message, never 0 (a
# script's `evshm ps --json > file` on a full disk), and never a loop
# writing into a pipe nobody reads when SIGPIPE is ignored (systemd
# services ignore it by default).
. "$(dirname "$0")/lib.sh"

step "ps > /dev/full: exit 4"
for f in "" --json; do
	rc=0; "$E" ps $f > /dev/full 2> "$T/err" || rc=$?
	[ "$rc" -eq 4 ] || fail "ps $f > /dev/full exited $rc, expected 4"
	grep -q "writing stdout" "$T/err" || fail "ps does not say why: $(cat "$T/err")"
done

step "ps --watch into a closed pipe, SIGPIPE ignored: ends, exit 4"
set +e
(trap '' PIPE; exec timeout 20 "$E" ps --watch 0.05 --json) 2> "$T/err" | head -c1 > /dev/null
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 4 ] || fail "ps --watch with its reader gone exited $rc, expected 4 (124: it looped on)"
echo "ok"
