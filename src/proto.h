/* SPDX-License-Identifier: MIT */
/*
 * proto.h: the handshake messages (docs/protocol.md, "Handshake").
 * Encoding and validation only: no descriptors, no system calls, so that
 * the fuzzer can drive it with arbitrary bytes.
 */
#ifndef EVSHM_PROTO_H
#define EVSHM_PROTO_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x48535645u /* "EVSH", same as the region magic */
#define PROTO_VERSION 1u

enum proto_type {
	PROTO_HELLO = 1,   /* client -> server, with 3 fds */
	PROTO_WELCOME = 2, /* server -> client, with 3 fds */
	PROTO_REJECT = 3,  /* server -> client, no fds, then close */
	PROTO_FDS = 4,     /* either way after the handshake, 1..253 fds */
};

/* Reasons carried by PROTO_REJECT; evshm maps them to errno values. */
enum proto_reject {
	PROTO_REJ_VERSION = 1, /* -EPROTONOSUPPORT */
	PROTO_REJ_RING = 2,    /* -EFBIG: ring size over the server's limit */
	PROTO_REJ_FULL = 3,    /* -EUSERS: the server has all the clients it takes */
	PROTO_REJ_DENIED = 4,  /* -EACCES: the access policy refused the peer */
	PROTO_REJ_INVALID = 5, /* -EPROTO: malformed hello or descriptors */
};

/* The descriptors that ride with HELLO and WELCOME, in this order. */
enum { PROTO_FD_REGION, PROTO_FD_DATA_BELL, PROTO_FD_SPACE_BELL, PROTO_NFDS };

/* Every handshake message: 32 bytes, native byte order. */
struct proto_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t features;       /* none defined in version 1: send 0, ignore */
	uint32_t status;         /* REJECT: enum proto_reject; else 0 */
	uint32_t ring_size;      /* the sender's outbound ring */
	uint32_t peer_ring_size; /* HELLO: size asked for the other way, 0: any */
	uint32_t region_size;    /* bytes of the sender's memfd */
	uint32_t reserved;       /* 0 */
};
static_assert(sizeof(struct proto_msg) == 32, "wire size");

void proto_hello(struct proto_msg *m, uint32_t ring_size,
		 uint32_t peer_ring_size);
void proto_welcome(struct proto_msg *m, uint32_t ring_size);
void proto_reject(struct proto_msg *m, uint32_t reason);

/* Is @size a valid ring size (power of two in [EVSHM_RING_MIN,
 * EVSHM_RING_MAX])? */
int proto_ring_size_ok(uint32_t size);

/*
 * Parse @len bytes received as a message of @want type (HELLO on the
 * server, WELCOME on the client; a client also accepts REJECT).  Checks
 * magic, version, type, sizes and their consistency; does not apply a
 * server's limits.  Returns 0 and fills @m, or -EPROTO (malformed),
 * -EPROTONOSUPPORT (other version), or, for a REJECT, the errno it means.
 */
int proto_parse(const void *buf, size_t len, enum proto_type want,
		struct proto_msg *m);

/*
 * Descriptors riding with a ring message: sent on the socket *before* the
 * ring record (flag RING_F_FDS) is committed, so they are queued by the
 * time the consumer sees the record.  @seq counts the fd-carrying messages
 * of one direction from 0, so the consumer can check the pairing.
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
