# The command line, without a network: help, version, usage errors, keys.
. "$(dirname "$0")/lib.sh"

step "--help names the manual; each role has its own"
"$BRIDGE" --help | grep -q "evshm-bridge(1)" || fail "--help does not name the manual"
"$BRIDGE" export --help | grep -q -- "--allow FILE" || fail "export --help"
"$BRIDGE" import --help | grep -q -- "--server-key" || fail "import --help"
"$BRIDGE" import --help | grep -q -- "--subscribers N" || fail "import --help: topics"
"$BRIDGE" export --help | grep -q -- "--topic NAME" || fail "export --help: topics"
"$BRIDGE" keygen --help | grep -q "BASENAME.pub" || fail "keygen --help"
"$BRIDGE" --version | grep -q "libzmq" || fail "--version"

step "usage errors exit 2, with a message"
ok=(--local @evb-cli --bind tcp://127.0.0.1:1 --insecure)
expect_rc 2 "$BRIDGE"
expect_rc 2 "$BRIDGE" frobnicate
expect_rc 2 "$BRIDGE" export --local @evb-cli --insecure
expect_rc 2 "$BRIDGE" export --bind tcp://127.0.0.1:1 --insecure
expect_rc 2 "$BRIDGE" import --local @evb-cli --connect tcp://127.0.0.1:1
grep -q -- "--key FILE is missing (or --insecure" "$T/out.txt" || fail "$(cat "$T/out.txt")"
expect_rc 2 "$BRIDGE" import --local @evb-cli --connect tcp://127.0.0.1:1 --key k
grep -q -- "--server-key is missing" "$T/out.txt" || fail "$(cat "$T/out.txt")"
expect_rc 2 "$BRIDGE" export --local @evb-cli --bind tcp://127.0.0.1:1 --key k
grep -q -- "--allow FILE is missing" "$T/out.txt" || fail "$(cat "$T/out.txt")"
expect_rc 2 "$BRIDGE" export "${ok[@]}" --key k
expect_rc 2 "$BRIDGE" export "${ok[@]}" --ring 3000
expect_rc 2 "$BRIDGE" export "${ok[@]}" --ring 2G
expect_rc 2 "$BRIDGE" export "${ok[@]}" --window 1K
expect_rc 2 "$BRIDGE" export "${ok[@]}" --heartbeat 2 --timeout 3
expect_rc 2 "$BRIDGE" export "${ok[@]}" --max-channels 0
expect_rc 2 "$BRIDGE" export "${ok[@]}" --server-key x
expect_rc 2 "$BRIDGE" import --local @evb-cli --connect tcp://127.0.0.1:1 --insecure --allow x
expect_rc 2 "$BRIDGE" export "${ok[@]}" --timeout
expect_rc 2 "$BRIDGE" export "${ok[@]}" --insecure=yes
expect_rc 2 "$BRIDGE" export "${ok[@]}" --topic @evb-cli-t
grep -q -- "give one of --local NAME" "$T/out.txt" || fail "$(cat "$T/out.txt")"
expect_rc 2 "$BRIDGE" import --local @evb-cli --connect tcp://127.0.0.1:1 --insecure --subscribers 2
grep -q -- "go with --topic" "$T/out.txt" || fail "$(cat "$T/out.txt")"
expect_rc 2 "$BRIDGE" export --topic @evb-cli --bind tcp://127.0.0.1:1 --insecure --stall-timeout 1
expect_rc 2 "$BRIDGE" import --topic @evb-cli --connect tcp://127.0.0.1:1 --insecure --subscribers -1

step "keygen: a private key file and a public one; never overwrites"
"$BRIDGE" keygen "$T/k" >/dev/null
[ "$(stat -c %a "$T/k.key")" = 600 ] || fail "k.key is mode $(stat -c %a "$T/k.key")"
pub=$(awk '/^public-key/ {print $2}' "$T/k.pub")
[ ${#pub} -eq 40 ] || fail "k.pub: no 40-character key"
grep -qF "public-key $pub" "$T/k.key" || fail "the two files disagree"
grep -q "^secret-key " "$T/k.pub" && fail "the public file holds the secret"
expect_rc 1 "$BRIDGE" keygen "$T/k"
grep -q "File exists" "$T/out.txt" || fail "$(cat "$T/out.txt")"

step "keys that cannot be used are refused at start (exit 1)"
printf 'public-key %s\n' "$pub" >"$T/pub-only.key"
chmod 600 "$T/pub-only.key"
expect_rc 1 "$BRIDGE" import --local @evb-cli --connect tcp://127.0.0.1:1 \
	--key "$T/pub-only.key" --server-key "$T/k.pub"
grep -q "needs a valid public-key and secret-key" "$T/out.txt" || fail "$(cat "$T/out.txt")"
expect_rc 1 "$BRIDGE" import --local @evb-cli --connect tcp://127.0.0.1:1 \
	--key "$T/k.key" --server-key "not-a-key"
printf 'public-key %s host1\nthis is not a key\n' "$pub" >"$T/allow"
expect_rc 1 "$BRIDGE" export --local @evb-cli --bind 'tcp://127.0.0.1:*' \
	--key "$T/k.key" --allow "$T/allow"
grep -q "allow:2: not a public key" "$T/out.txt" || fail "$(cat "$T/out.txt")"
step "--stats-file never writes through what lies at its temporary name"
echo keep >"$T/target"
ln -s "$T/target" "$T/stats.tmp"
"$BRIDGE" export --local @evb-cli --bind 'tcp://127.0.0.1:*' --insecure \
	--stats-file "$T/stats" 2>"$T/stats-export.log" &
p=$!
PIDS+=("$p")
wait_for test -f "$T/stats"
kill -TERM "$p"
wait_exit "$p" 10000
[ "$RC" -eq 0 ] || fail "the export exited $RC"
[ "$(cat "$T/target")" = keep ] || fail "the stats were written through a link"
grep -q "^sessions_total 0$" "$T/stats" || fail "stats: $(cat "$T/stats")"
echo "ok"
