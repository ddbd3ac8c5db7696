# An independent subscriber, written from docs/protocol.md alone in pure
# Python (tests/indep_sub.py), against `evshm pub`, next to `evshm sub`:
# reliable and latest, ring wraps and pads, kicks alone (a lost wakeup
# hangs: its poll slice is raised to 30 s), history, a drop, the
# publisher's death; then hostile publishers (bad handshakes, regions,
# bells, records, kicks).  Skips (77) without python3.
. "$(dirname "$0")/lib.sh"
# The python3 the build was configured with (EVSHM_PYTHON), else PATH's.
PY=${EVSHM_PYTHON:-$(command -v python3 || true)}
[ -n "$PY" ] && [ -x "$PY" ] || { echo "SKIP: python3 is not installed"; exit 77; }
S="$(dirname "$0")/../indep_sub.py"
# Every python run is bounded (a hang fails, it does not stall ctest).
indep() { timeout 30 "$PY" "$S" "$@"; }

kib=$((4096 / SCALE)); [ "$kib" -ge 512 ] || kib=512
head -c "${kib}K" /dev/urandom >"$T/in"

# reliable RING CHUNK: one evshm sub and one indep_sub, byte-exact, and the
# publisher's exit 0 says indep_sub's region accounted for every message.
reliable() {
	step "reliable, ring $1, chunk $2: evshm sub and indep_sub byte-exact"
	local n p s
	n=$(unique_name "r$1-$2")
	"$E" pub --subscribers 2 --timeout 20 --stall-timeout 30 --ring "$1" --chunk "$2" "$n" \
		<"$T/in" 2>"$T/pub$1.err" &
	p=$!
	PIDS+=("$p")
	"$E" sub --wait --timeout 20 "$n" >"$T/c$1.out" &
	s=$!
	PIDS+=("$s")
	indep --wait "$n" >"$T/py$1.out" 2>"$T/py$1.err" ||
		fail "indep_sub exited $?: $(cat "$T/py$1.err")"
	wait_rc "$s"; [ "$RC" -eq 0 ] || fail "evshm sub exited $RC"
	wait_rc "$p"; [ "$RC" -eq 0 ] || fail "evshm pub exited $RC: $(cat "$T/pub$1.err")"
	cmp -s "$T/in" "$T/c$1.out" || fail "evshm sub's output differs"
	cmp -s "$T/in" "$T/py$1.out" || fail "indep_sub's output differs"
}
reliable 64K 65504
reliable 4K 1000

step "slow publisher, latest: woken by kicks alone, byte-exact"
n=$(unique_name slow)
mkfifo "$T/slow.in"
"$E" pub --latest --subscribers 1 --timeout 20 --ring 64K "$n" <"$T/slow.in" 2>"$T/slow.pub.err" 3>&- &
p=$!
PIDS+=("$p")
exec 3>"$T/slow.in"
INDEP_SUB_POLL_SLICE=30 indep --wait "$n" >"$T/slow.out" 2>"$T/slow.err" 3>&- &
s=$!
PIDS+=("$s")
wait_for listening "$n"
sleep 0.3
for i in $(seq 1 40); do
	printf 'message %02d\n' "$i" >&3
	sleep 0.01
done
exec 3>&-
wait_rc "$s"; [ "$RC" -eq 0 ] || fail "indep_sub exited $RC: $(cat "$T/slow.err")"
wait_rc "$p"; [ "$RC" -eq 0 ] || fail "evshm pub exited $RC: $(cat "$T/slow.pub.err")"
[ "$(cat "$T/slow.out")" = "$(for i in $(seq 1 40); do printf 'message %02d\n' "$i"; done)" ] ||
	fail "indep_sub's output differs"

step "latest, fast publisher: whole messages in order, 'lost' exactly the gaps"
n=$(unique_name lossy)
"$E" pub --latest --subscribers 1 --timeout 20 --ring 16K --chunk 1000 "$n" \
	<"$T/in" 2>"$T/lossy.pub.err" &
p=$!
PIDS+=("$p")
rc=0
indep --wait --framed "$n" >"$T/lossy.out" 2>"$T/lossy.err" || rc=$?
wait_rc "$p"; [ "$RC" -eq 0 ] || fail "evshm pub exited $RC: $(cat "$T/lossy.pub.err")"
[ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] || fail "indep_sub exited $rc: $(cat "$T/lossy.err")"
"$PY" - "$T/in" "$T/lossy.out" "$T/lossy.err" "$rc" <<'EOF' || fail "indep_sub's latest output is wrong"
import re, struct, sys
f = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
err = open(sys.argv[3]).read()
i, last, n = 0, -1, 0
while i < len(b):
    ln, = struct.unpack_from('<I', b, i)
    d = b[i + 4:i + 4 + ln]
    i += 4 + ln
    k = f.find(d, (last + 1) * 1000)
    assert ln and k >= 0 and k % 1000 == 0, 'message %d is not a whole input chunk' % n
    last, n = k // 1000, n + 1
gaps = (len(f) + 999) // 1000 - n
if sys.argv[4] == '0':
    assert gaps == 0, 'exit 0 with %d messages missing' % gaps
else:
    m = re.search(r'lost (\d+) messages', err)
    assert m and int(m.group(1)) == gaps, 'lost %s, gaps %d: %s' % (m and m.group(1), gaps, err)
print('  %d messages, %d lost' % (n, gaps))
EOF

step "history: indep_sub starts with the newest 3 messages"
n=$(unique_name hist)
mkfifo "$T/hist.in"
"$E" pub --stall-timeout 30 --ring 64K "$n" <"$T/hist.in" 2>"$T/hist.pub.err" 3>&- &
p=$!
PIDS+=("$p")
exec 3>"$T/hist.in"
wait_for listening "$n"
for i in $(seq 1 10); do printf 'old %02d\n' "$i" >&3; sleep 0.05; done
sleep 0.2
indep --history 3 --verbose "$n" >"$T/hist.out" 2>"$T/hist.err" 3>&- &
y=$!
PIDS+=("$y")
wait_for grep -q subscribed "$T/hist.err"
printf 'new\n' >&3
exec 3>&-
wait_rc "$y"; [ "$RC" -eq 0 ] || fail "indep_sub exited $RC: $(cat "$T/hist.err")"
wait_rc "$p"; [ "$RC" -eq 0 ] || fail "evshm pub exited $RC: $(cat "$T/hist.pub.err")"
# Each printf is one message unless the publisher read two at once (a
# loaded machine): then the history holds more text, never less.
out=$(cat "$T/hist.out")
all=$(for i in $(seq 1 10); do printf 'old %02d\n' "$i"; done; echo new)
case "$out" in *"old 08"*"old 09"*"old 10"*new) ;; *) fail "indep_sub's history: $out" ;; esac
[ "${all%"$out"}" != "$all" ] || fail "indep_sub's history is not the stream's tail: $out"

step "a stalled indep_sub is dropped: it exits 5 and says so"
n=$(unique_name drop)
mkfifo "$T/drop.in"
"$E" pub --subscribers 1 --timeout 20 --ring 4K --stall-timeout 1 "$n" \
	<"$T/drop.in" 2>"$T/drop.pub.err" 3>&- &
p=$!
PIDS+=("$p")
exec 3>"$T/drop.in"
"$PY" "$S" --wait --verbose "$n" >"$T/drop.out" 2>"$T/drop.err" 3>&- &
y=$!
PIDS+=("$y")
wait_for grep -q subscribed "$T/drop.err"
kill -STOP "$y"
head -c 64K "$T/in" >&3
exec 3>&-
wait_rc "$p"; [ "$RC" -eq 1 ] || fail "evshm pub exited $RC, expected 1 (dropped)"
kill -CONT "$y"
wait_rc "$y"; [ "$RC" -eq 5 ] || fail "indep_sub exited $RC after its drop: $(cat "$T/drop.err")"
grep -q "dropped by the publisher" "$T/drop.err" || fail "no clear message: $(cat "$T/drop.err")"

step "publisher killed: indep_sub exits 1 and says so, after what it got"
n=$(unique_name kill)
mkfifo "$T/kill.in"
"$E" pub --subscribers 1 --timeout 20 --stall-timeout 30 "$n" <"$T/kill.in" 3>&- &
p=$!
PIDS+=("$p")
exec 3>"$T/kill.in"
indep --wait "$n" >"$T/kill.out" 2>"$T/kill.err" 3>&- &
y=$!
PIDS+=("$y")
echo "first words" >&3
wait_for grep -q "first words" "$T/kill.out"
kill -9 "$p"
wait_rc "$y"; [ "$RC" -eq 1 ] || fail "indep_sub exited $RC after its publisher died"
grep -q "publisher went away" "$T/kill.err" || fail "no clear message: $(cat "$T/kill.err")"
exec 3>&-

# Hostile publishers (tests/indep_fakepub.py): each break ends indep_sub
# with its exit status and a message that names it, within its bounds.
# All cases at once (each waits on its own clock).
"$PY" "$(dirname "$0")/../indep_fakepub.py" --cases >"$T/cases"
step "hostile publishers: $(awk '{ printf "%s%s", s, $1; s = ", " }' "$T/cases")"
declare -A FAKE SUB
while read -r c want text; do
	"$PY" "$(dirname "$0")/../indep_fakepub.py" "$c" "$(unique_name "fake-$c")" \
		>"$T/fake.$c.out" 2>"$T/fake.$c.pyerr" &
	FAKE[$c]=$!
	PIDS+=("$!")
done <"$T/cases"
while read -r c want text; do
	wait_for grep -sqx ready "$T/fake.$c.out"
	# Only the silent publisher is to time out, only the idle one to
	# publish nothing for a while: every other case ends by what its
	# publisher does, however late a loaded machine runs it (all start
	# at once), and its bounds only catch a hang.
	to=20 idle=20
	case $c in silent) to=3 ;; idle) idle=1 ;; esac
	# Our bell takes descriptors as before Linux 6.16 (kick_fds sends some).
	INDEP_SUB_PASSRIGHTS=1 indep --timeout "$to" --idle-timeout "$idle" \
		"$(unique_name "fake-$c")" >/dev/null 2>"$T/fake.$c.err" &
	SUB[$c]=$!
	PIDS+=("$!")
done <"$T/cases"
while read -r c want text; do
	wait_rc "${SUB[$c]}"
	kill "${FAKE[$c]}" 2>/dev/null || true
	[ "$RC" -eq "$want" ] || fail "$c: indep_sub exited $RC, not $want: $(cat "$T/fake.$c.err")"
	# A case that must end well (0) says nothing; any other names its break.
	if [ "$want" -eq 0 ]; then
		[ ! -s "$T/fake.$c.err" ] || fail "$c: indep_sub said: $(cat "$T/fake.$c.err")"
	else
		grep -Eq "$text" "$T/fake.$c.err" || fail "$c: indep_sub said: $(cat "$T/fake.$c.err")"
	fi
done <"$T/cases"
echo "ok"
