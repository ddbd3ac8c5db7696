# Sourced by the shell tests (tests/tool/lib.sh, bridge/tests/lib.sh).
#
# descendants PID: the pid of every process below PID, each before its
# own children (from /proc: ps may not be installed).  Not the shell that
# lists them.
descendants() {
	local f line pid
	local -A children=()
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		pid=${line%% *}
		line=${line##*) }  # after "pid (comm) ": "state ppid ..."
		line=${line#* }
		children[${line%% *}]+=" $pid"
	done
	_descend "$1"
}
_descend() {
	local p
	for p in ${children[$1]-}; do
		[ "$p" = "$BASHPID" ] && continue
		echo "$p"
		_descend "$p"
	done
}
