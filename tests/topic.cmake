# Topics: one publisher (the test), subscribers in separate exec'd
# processes.  `ctest -L topic`.
evshm_peer(peer_topic peer_topic.c)
evshm_test(test_topic SOURCES test_topic.c LABELS topic DEPENDS peer_topic
  TIMEOUT 600)
# Hostile topic peers, built from the internals.
evshm_peer(peer_topic_hostile peer_topic_hostile.c)
evshm_test(test_topic_hostile SOURCES test_topic_hostile.c LABELS topic hostile
  DEPENDS peer_topic peer_topic_hostile TIMEOUT 300)
