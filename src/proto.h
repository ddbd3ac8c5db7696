/* SPDX-License-Identifier: MIT */
/*
 * proto.h: the messages on the socket (docs/protocol.md, section 3).
 * Encoding and validation only: no descriptors, no system calls, so that
 * the fuzzer can drive it with arbitrary bytes.
 */
#ifndef EVSHM_PROTO_H
#define EVSHM_PROTO_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x48535645u /* "EVSH", same as the region magic */
#define PROTO_VERSION 2u

enum proto_type {
	PROTO_READY = 1,   /* server -> client, no fds: admitted, go on */
	PROTO_HELLO = 2,   /* client -> server, region + bells */
	PROTO_WELCOME = 3, /* server -> client, region + bells */
	PROTO_REJECT = 4,  /* server -> client, no fds, then close */
	PROTO_FDS = 5,     /* either way after the handshake, 1..253 fds */
	PROTO_DROP = 6,    /* publisher -> subscriber, no fds, then close */
};

/* What a server serves (READY) and a client wants (HELLO). */
enum proto_kind { PROTO_KIND_CHAN = 1, PROTO_KIND_TOPIC = 2 };

/* Feature bits: what the sender accepts. */
#define PROTO_F_FDS 0x1u /* descriptors with messages (FDS) */
#define PROTO_F_ALL PROTO_F_FDS

/* Reasons carried by PROTO_REJECT; evshm maps them to errno values.
 * When several apply, the lowest number is sent. */
enum proto_reject {
	PROTO_REJ_VERSION = 1, /* -EPROTONOSUPPORT */
	PROTO_REJ_RING = 2,    /* -EFBIG: ring size over the server's limit */
	PROTO_REJ_FULL = 3,    /* -EUSERS: the server has all the clients it takes */
	PROTO_REJ_DENIED = 4,  /* -EACCES: the access policy refused the peer */
	PROTO_REJ_INVALID = 5, /* -EPROTO: malformed hello or descriptors */
};

/* Reasons carried by PROTO_DROP. */
enum proto_drop {
	PROTO_DROP_STALLED = 1, /* reliable topic: no progress within the bound */
	PROTO_DROP_INVALID = 2, /* its head broke the rules */
};

/* Topic policies (READY.param of a topic). */
enum proto_policy { PROTO_POLICY_RELIABLE = 1, PROTO_POLICY_LATEST = 2 };

/* The descriptors that ride with HELLO and WELCOME, in this order: the
 * sender's region, and the kicking end of the sender's bell (a Unix stream
 * socket pair the sender made: the receiver sends one byte on it after a
 * commit or a release that passes an event index the sender published). */
enum { PROTO_FD_REGION, PROTO_FD_BELL, PROTO_NFDS };

#define PROTO_ID_SIZE 16

/* Every message but FDS: exactly 64 bytes, native byte order.  Fields a
 * type does not use are 0 (and checked). */
struct proto_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t kind;           /* enum proto_kind; REJECT/DROP: 0 */
	uint32_t status;         /* REJECT / DROP: the reason; else 0 */
	uint32_t features;       /* READY/HELLO/WELCOME: what the sender accepts */
	uint32_t ring_size;      /* HELLO/WELCOME: the sender's outbound ring */
	uint32_t peer_ring_size; /* HELLO: size asked the other way, 0: any;
				    READY: the server's largest ring */
	uint32_t region_size;    /* HELLO/WELCOME: bytes of the sender's memfd */
	uint8_t id[PROTO_ID_SIZE]; /* READY (topic): the topic's identity;
				      HELLO: the identity (a topic's: the
				      READY's); WELCOME: the same */
	uint64_t param;          /* READY (topic): policy; HELLO (topic):
				    history asked; WELCOME (topic): start index */
	uint64_t param2;         /* WELCOME (topic): start sequence number */
};
static_assert(sizeof(struct proto_msg) == 64, "wire size");

void proto_ready(struct proto_msg *m, uint32_t kind, uint32_t features,
		 uint32_t max_ring, uint64_t policy,
		 const uint8_t id[PROTO_ID_SIZE]);
void proto_hello(struct proto_msg *m, uint32_t kind, uint32_t features,
		 uint32_t ring_size, uint32_t peer_ring_size,
		 const uint8_t id[PROTO_ID_SIZE], uint64_t history);
void proto_welcome(struct proto_msg *m, uint32_t kind, uint32_t features,
		   uint32_t ring_size, const uint8_t id[PROTO_ID_SIZE],
		   uint64_t start, uint64_t start_seq);
void proto_reject(struct proto_msg *m, uint32_t reason);
void proto_drop(struct proto_msg *m, uint32_t reason);

/* Is @size a valid ring size (power of two in [EVSHM_RING_MIN,
 * EVSHM_RING_MAX])? */
int proto_ring_size_ok(uint32_t size);

/*
 * Parse @len bytes received as a message of @want type.  A client also
 * accepts REJECT when it wants READY or WELCOME, and a subscriber DROP
 * (returned as its errno: -ECONNABORTED).  Checks size, magic, version,
 * type, kind, that unused fields are 0, and the sizes and their
 * consistency; not a server's limits.  Returns 0 and fills @m,
 * -EPROTO (malformed), -EPROTONOSUPPORT (other version), or for a REJECT
 * the errno it means.
 */
int proto_parse(const void *buf, size_t len, enum proto_type want,
		struct proto_msg *m);

/*
 * Descriptors riding with a ring message: sent on the socket *before* the
 * ring record (flag RING_F_FDS) is committed, so they are queued by the
 * time the consumer sees the record.  @seq counts the fd-carrying messages
 * of one direction from 0, so the consumer can check the pairing.
 * Exactly 24 bytes.
 */
struct proto_fds {
	uint32_t magic;
	uint16_t version;
	uint16_t type;  /* PROTO_FDS */
	uint32_t nfds;  /* descriptors in this message's SCM_RIGHTS */
	uint32_t reserved;
	uint64_t seq;
};
static_assert(sizeof(struct proto_fds) == 24, "wire size");

void proto_fds(struct proto_fds *m, uint32_t nfds, uint64_t seq);
/* 0 if @buf/@len is a PROTO_FDS for @nfds descriptors and sequence @seq,
 * else -EPROTO. */
int proto_parse_fds(const void *buf, size_t len, uint32_t nfds, uint64_t seq);

/* errno (negative) meant by a reject reason, and back. */
int proto_reject_errno(uint32_t reason);
uint32_t proto_errno_reject(int err);

#endif
