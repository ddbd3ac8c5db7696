# For cleanup.sh: a bridge test that fails on purpose while programs it
# started in the background still run, none of them in PIDS or in a
# namespace (a plain job, one in a subshell, a pipeline).
# `bash fail_leaving.sh BUILD_DIR PIDFILE`: their pids go to PIDFILE.
. "$(dirname "$0")/lib.sh"
P=${2:?usage: $0 BUILD_DIR PIDFILE}
sleep 60 &
echo "$!" >>"$P"
(sleep 60 & echo "$!" >>"$P"; wait) &
(sleep 60 | cat) &
echo "$!" >>"$P"
wait_for eval '[ "$(wc -l <"$P")" -eq 3 ]'
fail "failing on purpose, three programs running"
