# A failing tool test leaves nothing running (tests/leftovers.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../leftovers.sh"
expect_no_leftovers "$(dirname "$0")/lib.sh" "$E"
