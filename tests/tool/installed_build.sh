# The evshm command uses only the public API: install the library from
# this build tree into a scratch prefix, then build tools/ against that
# installation alone, twice: as a CMake project of its own
# (find_package(evshm)) and with the compiler and pkg-config.  Including a
# header of the library's src/ or calling an internal symbol fails here.
#   bash installed_build.sh EVSHM_BUILD_DIR TOOLS_SRC_DIR [CFLAGS...]
# Extra arguments are compiler flags both builds use (the sanitizers of
# the tree that is installed).
set -euo pipefail
build=${1:?usage: $0 build-dir tools-dir [cflags...]}
tools=${2:?usage: $0 build-dir tools-dir [cflags...]}
shift 2
cflags="$*"
T=$(mktemp -d "${TMPDIR:-/tmp}/evshm-installed.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

step "cmake --install into a scratch prefix"
cmake --install "$build" --prefix "$T/prefix" >/dev/null
libdir=$(dirname "$(find "$T/prefix" -name 'libevshm.so' | head -1)")
[ -d "$libdir" ] || fail "no libevshm.so installed"
export LD_LIBRARY_PATH="$libdir"

step "tools/ as a project of its own, find_package(evshm)"
cmake -S "$tools" -B "$T/cmake" -DCMAKE_PREFIX_PATH="$T/prefix" \
	-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$cflags" \
	-DCMAKE_EXE_LINKER_FLAGS="$cflags" >"$T/configure.log" 2>&1 ||
	{ cat "$T/configure.log"; fail "configure failed"; }
cmake --build "$T/cmake" -j2 >"$T/build.log" 2>&1 ||
	{ cat "$T/build.log"; fail "the tool does not build against the installed library"; }
"$T/cmake/evshm" --version | grep -q "^evshm " || fail "the tool does not run"

step "the same sources with cc and pkg-config only"
pc=$(dirname "$(find "$T/prefix" -name evshm.pc | head -1)")
# --define-variable: evshm.pc may name the configured prefix rather than
# the one it was installed to.
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --define-variable=prefix="$T/prefix" \
	--cflags --libs evshm)
# shellcheck disable=SC2086 # word splitting of the flags is wanted
"${CC:-cc}" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $cflags -o "$T/evshm-pc" \
	"$tools"/*.c $flags -lm 2>"$T/cc.log" ||
	{ cat "$T/cc.log"; fail "the tool does not build with pkg-config"; }

step "the tool built outside the tree runs its demo"
"$T/evshm-pc" demo >"$T/demo.out" || { cat "$T/demo.out"; fail "demo failed"; }
grep -q "peer exited with status 0" "$T/demo.out" || fail "demo did not finish"
echo "ok"
