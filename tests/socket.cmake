# Socket layer tests (os.c, fdpass.c, endpoint.c): `ctest -L socket`.
# Two-process tests spawn a separate peer executable (DEPENDS builds it
# first); the test finds it through TEST_BINDIR.

evshm_peer(peer_fdpass peer_fdpass.c)
evshm_peer(peer_leak peer_leak.c)
evshm_peer(peer_endpoint peer_endpoint.c)

evshm_test(test_os SOURCES test_os.c LABELS socket)
evshm_test(test_fdpass SOURCES test_fdpass.c LABELS socket)
evshm_test(test_fdpass_xproc SOURCES test_fdpass_xproc.c LABELS socket
  DEPENDS peer_fdpass)
evshm_test(test_fdpass_leak SOURCES test_fdpass_leak.c LABELS socket
  DEPENDS peer_leak TIMEOUT 120)
evshm_test(test_endpoint SOURCES test_endpoint.c LABELS socket
  DEPENDS peer_endpoint)

