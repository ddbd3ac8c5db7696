# `evshm bench` runs every transport, test and placement briefly and checks
# every message (fan-out: at every subscriber); an injected lost or corrupt
# message fails the run.
# Timings are not looked at: benchmarks are not tests.
. "$(dirname "$0")/lib.sh"

# Sanitizer runs (EVSHM_TEST_SCALE) move fewer messages: generating and
# verifying 1 MiB ones is most of the time, and the shape is the same.
count=$((300 / SCALE)); [ "$count" -ge 16 ] || count=16
rtts=$((200 / SCALE)); [ "$rtts" -ge 20 ] || rtts=20
quick=(--repeat 2 --rtts "$rtts" --rtt-warmup 20 --idle 3 --idle-gap 1ms --count "$count"
	--sizes 64,4K,96K,1M --fanout-sizes 64,1M --subscribers 1,3)
# Two CPUs: the default placements (apart, same, unpinned); else unpinned.
if [ "$(nproc)" -ge 2 ]; then sections=3; else quick+=(--cpus none); sections=1; fi

step "every transport, test and placement, table"
"$E" bench "${quick[@]}" >"$T/table" || fail "bench failed"
for row in "unix stream" "unix seqpacket" "pipe" "evshm default" "evshm blocking" \
	"evshm spin" "evshm copy" "evshm zero-copy" "floor: cache line" "floor: eventfd" \
	"floor: slot ring" "floor: framed ring" "floor: memcpy"; do
	grep -q "^$row " "$T/table" || fail "no '$row' row"
done
# Round trips and idle waiting: one table per placement each.
[ "$(grep -c "^evshm default " "$T/table")" -eq $((2 * sections)) ] ||
	fail "evshm default is not in every placement"
[ "$(grep -c "^round trip, " "$T/table")" -eq "$sections" ] || fail "placements missing"
[ "$(grep -c "^waiting idle, " "$T/table")" -eq "$sections" ] || fail "idle placements missing"
grep -q "streaming, 1 MiB messages" "$T/table" || fail "no 1 MiB section"
# Fan-out: one table per size, each transport with 1 and 3 subscribers.
fan=("unix stream xN" "evshm topic copy" "evshm topic zc")
grep -q "zeromq: not built in" "$T/table" || fan+=("zeromq pub/sub")
[ "$(grep -c "^fan-out, " "$T/table")" -eq 2 ] || fail "fan-out sizes missing"
for row in "${fan[@]}"; do
	for n in 1 3; do
		[ "$(grep -cE "^$row +$n " "$T/table")" -eq 2 ] ||
			fail "no '$row' row with $n subscribers at every size"
	done
done

step "--json"
"$E" bench "${quick[@]}" --json --tests rtt,idle,stream,floor,fanout --sizes 4K \
	--fanout-sizes 4K >"$T/json" ||
	fail "bench --json failed"
if command -v jq >/dev/null; then
	jq -e '.results | length > 5' "$T/json" >/dev/null || fail "bad JSON"
	jq -e '[.results[] | select(.transport == "evshm-copy")][0].kicks_per_msg_send.median >= 0' \
		"$T/json" >/dev/null || fail "no kicks in JSON"
	jq -e '[.results[] | select(.transport == "evshm-default")] | length == '$((2 * sections)) \
		"$T/json" >/dev/null || fail "evshm-default not in every placement"
	jq -e '[.results[] | select(.transport == "evshm-blocking")][0] |
		.floor == "floor-eventfd" and .p50_vs_floor.median > 0' \
		"$T/json" >/dev/null || fail "no ratio to the eventfd floor"
	jq -e '[.results[] | select(.test == "idle" and .transport == "evshm-default")][0] |
		.cpu_ping_s_per_s.median >= 0 and .cpu_echo_s_per_s.median >= 0 and
		.latency_p50_ns.median > 0' \
		"$T/json" >/dev/null || fail "no CPU or latency of the idle test"
	jq -e '[.results[] | select(.test == "streaming" and .transport == "evshm-copy")][0] |
		.vs_memcpy.median > 0 and .vs_slot_ring.median > 0 and
		.vs_framed_ring.median > 0' \
		"$T/json" >/dev/null || fail "no streaming ratios to the floors"
	jq -e '[.results[] | select(.test == "fan-out" and .transport == "evshm-topic-zero-copy"
		and .subscribers == 3)][0] | .deliveries_per_s.median > 0 and
		.vs_unix_stream_sockets.median > 0 and .subscriber_cpu != null' \
		"$T/json" >/dev/null || fail "no fan-out figures in JSON"
else
	grep -q '"results": \[' "$T/json" || fail "no results in JSON"
	grep -q '"p50_vs_floor"' "$T/json" || fail "no ratio to a floor in JSON"
	grep -q '"cpu_echo_s_per_s"' "$T/json" || fail "no idle CPU in JSON"
fi

for f in corrupt drop; do
	step "--inject-fault $f fails the run with a message"
	for t in stream fanout; do
		for x in stream evshm; do
			rc=0
			"$E" bench --tests "$t" --transports "$x" --sizes 64 --fanout-sizes 64 \
				--subscribers 2 --count 100 --repeat 1 --inject-fault "$f" \
				>/dev/null 2>"$T/err" || rc=$?
			[ "$rc" -eq 1 ] || fail "$t $x with a $f message exited $rc"
			grep -qE "corrupt|lost" "$T/err" || fail "unclear message: $(cat "$T/err")"
		done
	done
done
if ! grep -q "zeromq: not built in" "$T/table"; then
	step "a failing ZeroMQ row is left out of its run, not of the benchmark"
	"$E" bench --tests fanout --transports zmq --fanout-sizes 64 --subscribers 2 \
		--count 100 --repeat 2 --inject-fault drop >"$T/out" 2>"$T/err" ||
		fail "a failing ZeroMQ row failed the run: $(cat "$T/err")"
	[ "$(grep -c "left out of this run: fan-out, 64 B, zeromq" "$T/err")" -eq 2 ] ||
		fail "the left-out runs are not reported: $(cat "$T/err")"
	grep -q "^ZeroMQ failed in 2 runs" "$T/out" || fail "the table does not say it"
fi
echo "ok"
