# Permissions are what /proc gives: `evshm ps` run as another user shows
# nothing of root's channels (it may not read root's descriptors) and all
# of its own; root sees both.  Needs root (to run things as nobody): skips
# (77) otherwise.
#   bash ps_uid.sh EVSHM PEER_PS PEER_PS_HOSTILE
. "$(dirname "$0")/lib.sh"
P=${2:?usage: $0 evshm peer_ps peer_ps_hostile}
need_jq
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv (util-linux)"; exit 77; }
nuid=$(id -u nobody 2>/dev/null) || { echo "SKIP: no user nobody"; exit 77; }
# A command word, not a function: `"${as_nobody[@]}" prog &` is prog's pid.
as_nobody=(setpriv --reuid="$nuid" --regid="$(id -g nobody)" --clear-groups)
"${as_nobody[@]}" "$E" --version >/dev/null 2>&1 ||
	{ echo "SKIP: nobody cannot run $E here"; exit 77; }

step "a channel of root's, a channel of nobody's"
n=$(unique_name root)
bg_start "$T/rs" "$P" server "$n" --send=2
rs=$BG
bg_start "$T/rc" "$P" client "$n" --recv=2
rc=$BG
m=$(unique_name nobody)
bg_start "$T/ns" "${as_nobody[@]}" "$P" server "$m" --send=3
ns=$BG
bg_start "$T/nc" "${as_nobody[@]}" "$P" client "$m" --recv=3
nc=$BG
for f in rs rc ns nc; do wait_ready "$T/$f"; done

step "evshm ps as nobody: its own channel, nothing of root's"
rc_=0
"${as_nobody[@]}" timeout 10 "$E" ps --json >"$T/ps.json" || rc_=$?
[ "$rc_" -eq 0 ] || fail "evshm ps as nobody exited $rc_"
ps_expect --argjson rs "$rs" --argjson rc "$rc" --argjson ns "$ns" --argjson nc "$nc" \
	--argjson nuid "$nuid" -- \
	"nobody's channel, whole::.channels | map(select(.server.pid == \$ns)) |
	 length == 1 and .[0].client.pid == \$nc and .[0].client.uid == \$nuid" \
	"no side of root's channel::[.channels[], .topics[] | .. | objects | .pid? |
	 select(. != null)] + [.invalid[].pid] | all(. != \$rs and . != \$rc)" \
	"processes it may not read are counted::.hidden > 0"
"${as_nobody[@]}" timeout 10 "$E" ps >"$T/ps.txt" || fail "evshm ps (text) as nobody exited $?"
grep -q "^CHANNEL $m " "$T/ps.txt" || fail "nobody does not see its channel: $(cat "$T/ps.txt")"
! grep -q "$n" "$T/ps.txt" || fail "nobody sees root's channel: $(cat "$T/ps.txt")"

step "evshm ps as root: both"
ps_json --pid "$rs,$ns"
ps_expect --argjson rs "$rs" --argjson rc "$rc" --argjson ns "$ns" --argjson nc "$nc" \
	--argjson nuid "$nuid" -- \
	"two channels::.channels | length == 2" \
	"root's::.channels | map(select(.server.pid == \$rs)) | .[0].client.pid == \$rc and
	 .[0].server.uid == 0" \
	"nobody's, with its uid::.channels | map(select(.server.pid == \$ns)) |
	 .[0].client.pid == \$nc and .[0].server.uid == \$nuid and .[0].client.uid == \$nuid"
echo "ok"
