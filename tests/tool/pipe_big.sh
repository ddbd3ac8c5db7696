# A large random file through `evshm send` / `evshm recv`, byte-exact
# (sha256), with the receiver started first and then the sender first.
. "$(dirname "$0")/lib.sh"

mib=$((1024 / SCALE)); [ "$mib" -ge 8 ] || mib=8
step "making a ${mib} MiB random file"
head -c "${mib}M" /dev/urandom >"$T/in"
want=$(sha256sum <"$T/in" | cut -d' ' -f1)

step "recv first, then send (--wait removes the race)"
n=$(unique_name a)
("$E" recv "$n" | sha256sum | cut -d' ' -f1 >"$T/sum1") &
r=$!
"$E" send --wait --timeout 20 "$n" <"$T/in" || fail "send exited $?"
wait_rc $r; [ "$RC" -eq 0 ] || fail "recv failed"
[ "$(cat "$T/sum1")" = "$want" ] || fail "sha256 differs (recv first)"

step "send first (--wait), recv a moment later, through a pipe on stdin"
n=$(unique_name b)
(cat "$T/in" | "$E" send --wait "$n") &
s=$!
sleep 0.3
"$E" recv "$n" | sha256sum | cut -d' ' -f1 >"$T/sum2"
wait_rc $s; [ "$RC" -eq 0 ] || fail "send failed"
[ "$(cat "$T/sum2")" = "$want" ] || fail "sha256 differs (send first)"
echo "ok"
