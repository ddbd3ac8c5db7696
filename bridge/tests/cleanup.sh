# A failing bridge test leaves nothing running (tests/leftovers.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../../tests/leftovers.sh"
expect_no_leftovers "$(dirname "$0")/lib.sh" "$BUILD"
