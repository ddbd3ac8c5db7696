# Topics: one publisher (the test), subscribers in separate exec'd
# processes.  `ctest -L topic`.
evshm_peer(peer_topic peer_topic.c)
evshm_test(test_topic SOURCES test_topic.c LABELS topic DEPENDS peer_topic
  TIMEOUT 600)
