# Many clients, limits, access control and descriptors riding with
# messages; and the examples run as tests.  `ctest -L server`.

set(EVSHM_EXAMPLES_SRC ${PROJECT_SOURCE_DIR}/examples)

# The echo-client example, built here so that the tests find it next to
# them (and built with the tests' flags).
evshm_peer(peer_echo_client ${EVSHM_EXAMPLES_SRC}/echo-client.c)
target_include_directories(peer_echo_client PRIVATE ${EVSHM_EXAMPLES_SRC})

# The client process of the stall, limits, access and descriptor tests.
evshm_peer(peer_server peer_server.c fdmsg.c)
target_include_directories(peer_server PRIVATE ${EVSHM_EXAMPLES_SRC})

# This process is the server and runs the echo-server example's loop.
evshm_test(test_server_many
  SOURCES test_server_many.c ${EVSHM_EXAMPLES_SRC}/echo-loop.c
  LABELS server DEPENDS peer_echo_client peer_server TIMEOUT 300)
target_include_directories(test_server_many PRIVATE ${EVSHM_EXAMPLES_SRC})
# Without glibc's per-thread cache, mallinfo2() counts exactly the bytes in
# use, and the test demands that they come back exactly.
set_tests_properties(test_server_many PROPERTIES
  ENVIRONMENT "GLIBC_TUNABLES=glibc.malloc.tcache_count=0")

evshm_test(test_server_limits SOURCES test_server_limits.c
  LABELS server DEPENDS peer_server)
evshm_test(test_server_fds SOURCES test_server_fds.c fdmsg.c
  LABELS server DEPENDS peer_server TIMEOUT 300)

# The examples themselves, as built in <build>/examples.
evshm_test(test_examples SOURCES test_examples.c
  LABELS server DEPENDS echo-server echo-client frame-pass TIMEOUT 300)
target_compile_definitions(test_examples PRIVATE
  EXAMPLES_BINDIR="${CMAKE_BINARY_DIR}/examples")
