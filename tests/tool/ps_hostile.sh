# evshm ps against regions that lie: a process opens memfds named like
# evshm regions with corrupt headers, wrong sizes, no seals, absurd
# figures, hostile names, one that shrinks and grows while ps reads it,
# and (as root) a plain file of another filesystem under such a name
# (tests/peer_ps_hostile.c, one row per case).  ps lists each invalid one
# as invalid with why, shows the absurd ones as they are with nothing
# computed from contradictions, escapes every name, and never crashes or
# hangs.
#   bash ps_hostile.sh EVSHM PEER_PS PEER_PS_HOSTILE
. "$(dirname "$0")/lib.sh"
H=${3:?usage: $0 evshm peer_ps peer_ps_hostile}
need_jq

step "the hostile regions, each where the table says"
bg_start "$T/h" "$H" regions
h=$BG
wait_ready "$T/h"
fd_of() { awk -v c="$1" '$1 == "case" && $2 == c { print $4 }' "$T/h"; }
ps_json --pid "$h"
checks=()
while read -r _ name _ fd _ expect; do
	case $expect in
	invalid) where='.invalid[]' ;;
	channel) where='.channels[] | .client, .server | objects' ;;
	topic) where='.topics[] | .publisher, .subscribers[] | objects' ;;
	*) fail "peer_ps_hostile: unknown expectation '$expect'" ;;
	esac
	checks+=("$name: listed once, as $expect::[$where | select(.pid == \$h and .fd == $fd)] | length == 1")
done < <(grep '^case ' "$T/h")
[ "${#checks[@]}" -ge 10 ] || fail "peer_ps_hostile listed only ${#checks[@]} cases"
ps_expect --argjson h "$h" -- "${checks[@]}" \
	"every invalid one says why::.invalid | length >= 8 and
	 all(.error.name != null and (.error.reason | type) == \"string\")" \
	"too short: EIO::.invalid[] | select(.fd == $(fd_of short)) | .error.name == \"EIO\" and .size == 100" \
	"wrong size::.invalid[] | select(.fd == $(fd_of size)) | .error.name == \"EPROTO\" and .size == 12288" \
	"unsealed::.invalid[] | select(.fd == $(fd_of unsealed)) | .memfd_sealed == false" \
	"the memfd's own name, escaped and kept::.invalid[] | select(.fd == $(fd_of memfd_name)) |
	 .memfd == \"evshm:\u001b[2Jchan\""

if [ -n "$(fd_of foreign_fs)" ]; then
	ps_expect -- "a file of another filesystem is neither opened nor stat'ed::.invalid[] |
		select(.fd == $(fd_of foreign_fs)) | .size == null and
		(.error.reason | test(\"another filesystem\"))"
fi

step "absurd figures are shown as they are; nothing is computed from them"
ps_expect --argjson c "$(fd_of absurd_client)" --argjson s "$(fd_of absurd_server)" \
	--argjson p "$(fd_of absurd_pub)" --argjson b "$(fd_of absurd_sub)" -- \
	"the absurd channel is paired::[.channels[] | select(.client.fd == \$c and .server.fd == \$s)] | length == 1" \
	"counters as they are::.channels[] | select(.client.fd == \$c) | .client |
	 .msgs_sent > 1.8e19 and .bytes_sent > 1.8e19 and .kicks > 1.8e19 and .pid_claimed == 1 and
	 .cpu == 4294967294" \
	"a head past the tail: fill unknown::.channels[] | select(.client.fd == \$c) | .client.fill == null" \
	"a tail far past the head: fill at most the ring::.channels[] | select(.client.fd == \$c) |
	 .server.fill == 4096" \
	"an error with no such reason::.channels[] | select(.client.fd == \$c) | .client.error |
	 .name == \"EPROTO\" and .reason == \"unknown reason\"" \
	"a hostile name survives JSON::.channels[] | select(.client.fd == \$c) | .name |
	 contains(\"\u001b[2J\") and contains(\"\ufffd\")" \
	"the absurd topic is paired::[.topics[] | select(.publisher.fd == \$p and
	 (.subscribers | map(.fd) == [\$b]))] | length == 1" \
	"a subscriber ahead of its publisher: lag unknown::.topics[] | select(.publisher.fd == \$p) |
	 .subscribers[0].lag == null and .subscribers[0].lost > 1.8e19 and
	 .publisher.subscribers > 1.8e19" \
	"one file under three numbers is one region::[.channels[] | .client | objects |
	 select(.name == \"@dup\")] | length == 1 and .[0].fd == $(fd_of dup)"

step "text: no byte of a hostile name reaches the terminal"
timeout 10 "$E" ps --pid "$h" >"$T/ps.txt" || fail "evshm ps exited $?"
! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f\xfe\xff]' "$T/ps.txt" ||
	fail "control or invalid bytes in the output: $(od -c "$T/ps.txt" | head -20)"
grep -qF '@evil\x1b[2J\x1b]0;owned\x07\xff\xfe\\' "$T/ps.txt" ||
	fail "the name is not shown escaped: $(cat "$T/ps.txt")"
grep -q "^INVALID REGIONS" "$T/ps.txt" || fail "no invalid regions: $(cat "$T/ps.txt")"

step "looking again and again while one region shrinks and grows"
t=$(fd_of truncating)
for i in $(seq 20); do
	ps_json --pid "$h"
	ps_expect -- "the truncating region is listed as invalid::[.invalid[] | select(.fd == $t)] | length == 1"
	timeout 10 "$E" ps --pid "$h" >/dev/null || fail "evshm ps exited $? (round $i)"
done
timeout 20 "$E" ps --json --watch 0.02 --iterations 50 --pid "$h" >"$T/watch.json" ||
	fail "evshm ps --watch exited $?"
[ "$(jq -s length "$T/watch.json")" -eq 50 ] || fail "50 samples expected"
kill "$h"
echo "ok"
