# Hostile peers (`ctest -L hostile`): our side is the real library, the other
# a separately exec'd program built from the internals that breaks the
# protocol on purpose (bad handshakes, corrupt rings, bell abuse, attempts to
# write our region).
evshm_peer(peer_hostile peer_hostile.c)
evshm_test(test_hostile SOURCES test_hostile.c LABELS hostile
  DEPENDS peer_hostile TIMEOUT 300)
