# The test harness itself (tests/util.c): `ctest -L harness`.
# test_peers_cleanup runs peer_failing, a cmocka program that fails on
# purpose with peers running, and checks that none of them outlives it.
evshm_peer(peer_sleeper peer_sleeper.c)
evshm_peer(peer_failing peer_failing.c)
target_compile_definitions(peer_failing PRIVATE
  TEST_BINDIR="${CMAKE_CURRENT_BINARY_DIR}")
evshm_test(test_peers_cleanup SOURCES test_peers_cleanup.c LABELS harness
  DEPENDS peer_failing peer_sleeper TIMEOUT 180)
