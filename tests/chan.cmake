# The channel between two separately exec'd processes.
evshm_peer(peer_chan peer_chan.c)
evshm_test(test_chan SOURCES test_chan.c LABELS chan DEPENDS peer_chan TIMEOUT 600)
