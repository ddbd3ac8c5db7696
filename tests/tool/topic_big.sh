# A large random file through `evshm pub` to three `evshm sub`, byte-exact
# (sha256) at every subscriber; the publisher waits for all three
# (--subscribers 3) before it reads stdin, so nobody misses the start.
. "$(dirname "$0")/lib.sh"

mib=$((1024 / SCALE)); [ "$mib" -ge 8 ] || mib=8
step "making a ${mib} MiB random file"
head -c "${mib}M" /dev/urandom >"$T/in"
want=$(sha256sum <"$T/in" | cut -d' ' -f1)

step "pub --subscribers 3, three subs, ${mib} MiB each"
n=$(unique_name big)
"$E" pub --subscribers 3 --timeout 30 --stall-timeout 30 "$n" <"$T/in" 2>"$T/pub.err" &
p=$!
subs=()
for i in 1 2 3; do
	("$E" sub --wait --timeout 20 "$n" | sha256sum | cut -d' ' -f1 >"$T/sum$i"
	 echo "${PIPESTATUS[0]}" >"$T/rc$i") &
	subs+=($!)
done
wait_rc $p; [ "$RC" -eq 0 ] || fail "pub exited $RC: $(cat "$T/pub.err")"
for i in 1 2 3; do
	wait_rc "${subs[$((i - 1))]}"
	[ "$(cat "$T/rc$i")" -eq 0 ] || fail "sub $i exited $(cat "$T/rc$i")"
	[ "$(cat "$T/sum$i")" = "$want" ] || fail "sha256 differs at subscriber $i"
done
echo "ok"
