/* SPDX-License-Identifier: MIT */
/*
 * err.h: which check fired.  About fifty checks on what a peer sends end
 * in the same -EPROTO; each names itself here, so that a broken channel can
 * say why (evshm_error_reason(), evshm ps) and, with EVSHM_DEBUG=1 in the
 * environment, log it to stderr with its place in the source.
 */
#ifndef EVSHM_ERR_H
#define EVSHM_ERR_H

#define EVSHM_REASONS(X)                                                          \
	X(NONE, "no error")                                                       \
	X(HS_SIZE, "handshake: message of the wrong size")                        \
	X(HS_MAGIC, "handshake: bad magic")                                       \
	X(HS_VERSION, "handshake: other protocol version")                        \
	X(HS_TYPE, "handshake: unexpected message type")                          \
	X(HS_FIELDS, "handshake: a field out of range or not zero")               \
	X(HS_KIND, "handshake: the peer serves or wants another kind")            \
	X(HS_NFDS, "handshake: wrong number of descriptors")                      \
	X(HS_ID, "handshake: the welcome names another channel")                  \
	X(HS_RING, "handshake: ring size not as asked")                           \
	X(HS_RECV, "handshake: socket error or truncated message")                \
	X(FD_SEALS, "region: memfd without the required seals")                   \
	X(FD_FS, "region: not a tmpfs memfd (hugetlbfs?)")                        \
	X(FD_SIZE, "region: memfd of the wrong size")                             \
	X(FD_NAME, "region: not an anonymous memfd")                              \
	X(FD_MAP, "region: cannot be mapped for reading")                         \
	X(FD_HEADER, "region: header does not match the handshake")               \
	X(FD_BELL, "bell: not a Unix stream socket the peer made")              \
	X(RING_HEAD, "ring: the consumer's head moved back or past the tail")     \
	X(RING_PAD, "ring: malformed pad record")                                 \
	X(RING_FLAGS, "ring: reserved record flags set")                          \
	X(RING_LEN, "ring: record longer than the largest message")               \
	X(RING_FIT, "ring: record runs past the end of the ring")                 \
	X(FDS_UNWANTED, "descriptors sent on a channel that refuses them")        \
	X(FDS_MISSING, "descriptors announced by a record are not there")         \
	X(FDS_MSG, "malformed FDS message")                                       \
	X(TOPIC_START, "topic: start position out of the ring")                   \
	X(TOPIC_HORIZON, "topic: overwrite horizon moved back or ahead of tail")  \
	X(TOPIC_OLDEST, "topic: oldest record index invalid")                     \
	X(SOCK_DATA, "unexpected message on the control socket")                  \
	X(BELL_SLOW, "bell: the peer makes every kick take milliseconds")

enum err_reason {
#define EVSHM_REASON_ENUM(name, text) R_##name,
	EVSHM_REASONS(EVSHM_REASON_ENUM)
#undef EVSHM_REASON_ENUM
	R_COUNT
};

/* Note @reason as the last check that failed in this thread, log it when
 * EVSHM_DEBUG is set, and return -EPROTO.  Use through ERR_PROTO(). */
int err_proto(enum err_reason reason, const char *file, int line);
#define ERR_PROTO(reason) err_proto(R_##reason, __FILE__, __LINE__)

/* The last reason noted in this thread (R_NONE after err_clear()). */
enum err_reason err_last(void);
void err_clear(void);

/* Its text; "unknown reason" for a value out of range (evshm ps reads the
 * code from a peer's memory). */
const char *err_text(unsigned reason);

#endif
