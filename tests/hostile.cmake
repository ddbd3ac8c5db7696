# Hostile peers (`ctest -L hostile`): our side is the real library, the other
# a separately exec'd program built from the internals that breaks the
# protocol on purpose (bad handshakes, corrupt rings, bell abuse, attempts to
# write our region).
evshm_peer(peer_hostile peer_hostile.c)
evshm_test(test_hostile SOURCES test_hostile.c LABELS hostile
  DEPENDS peer_hostile TIMEOUT 300)
# Issue 8, the trust boundary round 2: one test per attack of the 0.1.0
# review (a region raced, hugetlb, a flood from another uid, a bell flood,
# a squatter, the socket file's mode, slow closes, the client's limits).
evshm_test(test_trust SOURCES test_trust.c LABELS hostile
  DEPENDS peer_hostile peer_topic_hostile TIMEOUT 300)
# Far more sleeps than a bell holds kicks; evshm_fd() quiet after waits.
evshm_test(test_bell_sleeps SOURCES test_bell_sleeps.c LABELS hostile
  DEPENDS peer_hostile TIMEOUT 300)
