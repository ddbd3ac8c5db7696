# Every command and subcommand answers --help with exit 0; bad usage is 2.
. "$(dirname "$0")/lib.sh"

step "evshm --help"
"$E" --help >"$T/help" || fail "--help exited non-zero"
grep -q "usage: evshm COMMAND" "$T/help" || fail "no usage from --help"
tail -1 "$T/help" | grep -q "See evshm(1)\.$" || fail "--help does not name the man page"
"$E" --version | grep -q "^evshm [0-9]" || fail "no version"
for c in send recv pub sub bench demo ps top; do
	step "evshm $c --help"
	"$E" "$c" --help >"$T/help" || fail "$c --help exited non-zero"
	grep -q "usage: evshm $c" "$T/help" || fail "$c --help shows no usage"
	[ "$(tail -1 "$T/help")" = "See evshm(1)." ] || fail "$c --help does not end with the man page"
done
step "usage errors exit 2"
expect_rc 2 "$E"
expect_rc 2 "$E" no-such-command
expect_rc 2 "$E" send
expect_rc 2 "$E" recv a b
expect_rc 2 "$E" send --bogus @x
expect_rc 2 "$E" send --ring 5000 @x
expect_rc 2 "$E" send --progress=yes @x
expect_rc 2 "$E" send --timeout
expect_rc 2 "$E" demo extra
expect_rc 2 "$E" recv --listen --wait @x
expect_rc 2 "$E" pub
expect_rc 2 "$E" sub a b
expect_rc 2 "$E" pub --subscribers many @x
expect_rc 2 "$E" pub --subscribers 2000 @x
expect_rc 2 "$E" pub --stall-timeout 0 @x
expect_rc 2 "$E" pub --wait @x
expect_rc 2 "$E" pub --ring 3M @x
expect_rc 2 "$E" sub --history -1 @x
expect_rc 2 "$E" sub --latest @x
expect_rc 2 "$E" bench --sizes 7
expect_rc 2 "$E" bench --repeat 0
expect_rc 2 "$E" bench --ring 4K --sizes 1M
expect_rc 2 "$E" bench --cpus 0,0
expect_rc 2 "$E" bench --cpus none --placements same
expect_rc 2 "$E" bench --placements nowhere
expect_rc 2 "$E" bench --idle 1000
expect_rc 2 "$E" bench --tests idle --rtt-size 16
expect_rc 2 "$E" bench --subscribers 9
expect_rc 2 "$E" bench --subscribers 0
expect_rc 2 "$E" bench --fanout-sizes 7
expect_rc 2 "$E" bench --tests fanout,nothing
expect_rc 2 "$E" ps extra
expect_rc 2 "$E" ps --iterations 3
expect_rc 2 "$E" ps --watch 0
expect_rc 2 "$E" ps --pid 12,x
expect_rc 2 "$E" top --name ""
echo "ok"
