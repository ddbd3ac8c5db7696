# The ring alone: no sockets, no processes.
evshm_test(test_ring SOURCES test_ring.c LABELS ring TIMEOUT 120)
