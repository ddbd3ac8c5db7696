# For the cleanup tests (leftovers.sh): a shell test that fails on purpose
# while programs it started in the background still run, none of them
# listed anywhere (a plain job, one in a subshell, a pipeline).
# `bash fail_leaving.sh LIB ARG PIDFILE`: sources the test library LIB
# (tests/tool/lib.sh, bridge/tests/lib.sh) as a test of it would, with its
# one argument ARG; the programs' pids go to PIDFILE.
lib=${1:?usage: $0 LIB ARG PIDFILE} arg=${2:?} P=${3:?}
set -- "$arg"
. "$lib"
sleep 60 &
echo "$!" >>"$P"
(sleep 60 & echo "$!" >>"$P"; wait) &
(sleep 60 | cat) &
echo "$!" >>"$P"
wait_for eval '[ "$(wc -l <"$P")" -eq 3 ]'
fail "failing on purpose, three programs running"
