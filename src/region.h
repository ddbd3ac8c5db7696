/* SPDX-License-Identifier: MIT */
/*
 * region.h: the memory one side owns and writes, and the peer maps
 * read-only.  docs/protocol.md, section 4, is the normative layout.
 *
 * A region is a sealed memfd: a 4096-byte header page, then (for a side
 * that produces) its outbound ring.  The header holds, each group on its
 * own 128-byte line so that a line written on the hot path is never one
 * the peer polls:
 *  - constants written before hand-over: identity, sizes, owner, name;
 *  - the producer's hot line (tail, its counters), written per commit;
 *  - the producer's wait line (space_event, tx_state), written on waits;
 *  - the consumer's hot line (head, its counters), written per release;
 *  - the consumer's wait line (data_event, rx_state), written on waits;
 *  - status (the CPU it last waited on, a sticky error and its reason);
 *  - for a topic publisher, the overwrite horizon and the oldest record.
 * Every byte has exactly one writer, the owner, enforced by the kernel (the
 * peer's mapping is read-only and the memfd is sealed against new writable
 * mappings).  The region's read-only memfd stays open in the owner for
 * `evshm ps`, which finds it in /proc/PID/fd and maps it read-only.
 */
#ifndef EVSHM_REGION_H
#define EVSHM_REGION_H

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define REGION_MAGIC 0x48535645u    /* "EVSH" in little-endian memory */
#define REGION_VERSION 2u
#define REGION_HDR_SIZE 4096u       /* ring data starts here */
#define REGION_NAME_MAX 108         /* a sun_path, NUL included */
#define REGION_ID_SIZE 16
/* The memfd name prefix evshm ps looks for ("/memfd:evshm:chan ..."). */
#define REGION_MEMFD_PREFIX "evshm:"

/* Hot fields sit 128 bytes apart: the adjacent-line prefetcher of x86 pulls
 * 64-byte lines in pairs, so 64 would still share. */
#define REGION_LINE 128

enum region_kind {
	REGION_CHAN = 1, /* one side of a channel: a ring, and a head */
	REGION_PUB = 2,  /* a topic's publisher: the ring */
	REGION_SUB = 3,  /* a topic's subscriber: a head, no ring */
};

enum region_role { REGION_CLIENT = 1, REGION_SERVER = 2 };

/* A role's wait state (tx_state, rx_state), written by the owner. */
#define WS_ASLEEP 0x1u    /* blocked in the kernel until a kick */
#define WS_FENCELESS 0x2u /* its commits (releases) skip the wakeup fence:
			     a peer going to sleep must run membarrier(2) */

struct region {
	/* --- constants, written before the region is handed over --- */
	uint32_t magic;
	uint32_t version;
	uint32_t kind;          /* enum region_kind */
	uint32_t hdr_size;      /* REGION_HDR_SIZE */
	uint32_t ring_size;     /* 0 for a subscriber */
	uint32_t role;          /* enum region_role */
	uint32_t pid;           /* the owner, as it sees itself */
	uint32_t features;      /* what the owner accepts (PROTO_F_*) */
	uint8_t id[REGION_ID_SIZE]; /* the channel's (topic's) identity */
	char name[REGION_NAME_MAX]; /* where it met its peer, NUL-terminated */

	/* --- producer, per commit --- */
	alignas(REGION_LINE) _Atomic uint64_t tail; /* bytes committed (informative) */
	_Atomic uint64_t msgs_sent;
	_Atomic uint64_t bytes_sent;
	/* --- producer, on waits --- */
	alignas(REGION_LINE) _Atomic uint64_t space_event;
	_Atomic uint32_t tx_state;
	uint32_t pad0_;
	_Atomic uint64_t tx_kicks;  /* kicks of the peer's data bell */
	_Atomic uint64_t tx_sleeps;
	_Atomic uint64_t tx_spins;
	/* --- consumer, per release --- */
	alignas(REGION_LINE) _Atomic uint64_t head; /* bytes released */
	_Atomic uint64_t msgs_recv;
	_Atomic uint64_t bytes_recv;
	_Atomic uint64_t lost;      /* topic subscriber: messages it missed */
	/* --- consumer, on waits --- */
	alignas(REGION_LINE) _Atomic uint64_t data_event;
	_Atomic uint32_t rx_state;
	uint32_t pad1_;
	_Atomic uint64_t rx_kicks;  /* kicks of the peer's space bell */
	_Atomic uint64_t rx_sleeps;
	_Atomic uint64_t rx_spins;
	/* --- status --- */
	alignas(REGION_LINE) _Atomic uint32_t cpu; /* CPU + 1 it last waited on; 0 unknown */
	_Atomic int32_t error;      /* sticky -errno of the channel, 0 */
	_Atomic uint32_t reason;    /* enum reason: which check fired */
	uint32_t pad2_;
	/* --- topic publisher --- */
	alignas(REGION_LINE) _Atomic uint64_t horizon; /* bytes below it may be overwritten */
	_Atomic uint64_t oldest;    /* start of the oldest record not yet overwritten */
	_Atomic uint64_t oldest_seq; /* its sequence number */
	_Atomic uint64_t subscribers; /* subscribers attached now (informative) */
	/* --- topic publisher, written only when it drops a subscriber --- */
	alignas(REGION_LINE) _Atomic uint64_t dropped; /* subscribers dropped */
};

static_assert(offsetof(struct region, id) == 32, "layout");
static_assert(offsetof(struct region, name) == 48, "layout");
static_assert(offsetof(struct region, tail) == 256, "layout");
static_assert(offsetof(struct region, space_event) == 384, "layout");
static_assert(offsetof(struct region, tx_state) == 392, "layout");
static_assert(offsetof(struct region, head) == 512, "layout");
static_assert(offsetof(struct region, data_event) == 640, "layout");
static_assert(offsetof(struct region, rx_state) == 648, "layout");
static_assert(offsetof(struct region, cpu) == 768, "layout");
static_assert(offsetof(struct region, horizon) == 896, "layout");
static_assert(offsetof(struct region, dropped) == 1024, "layout");
static_assert(sizeof(struct region) <= REGION_HDR_SIZE, "layout");
static_assert(sizeof(_Atomic uint64_t) == 8, "u64 atomics");
static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
	      "lock-free u64 atomics");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "lock-free u32 atomics");

static inline uint8_t *region_data(struct region *r)
{
	return (uint8_t *)r + REGION_HDR_SIZE;
}

static inline const uint8_t *region_cdata(const struct region *r)
{
	return (const uint8_t *)r + REGION_HDR_SIZE;
}

static inline size_t region_size(uint32_t ring_size)
{
	return REGION_HDR_SIZE + (size_t)ring_size;
}

/* What a new region says about itself. */
struct region_info {
	enum region_kind kind;
	enum region_role role;
	uint32_t ring_size;
	uint32_t features;
	const uint8_t *id;      /* REGION_ID_SIZE bytes */
	const char *name;       /* may be NULL */
};

/*
 * Create our region: a memfd named "evshm:<kind>", mapped read-write,
 * initialised from @info, then sealed so that nobody (the peer included,
 * whatever descriptor it holds or reopens) can map it writable, write() it,
 * punch holes in it or change its size.  *@ro_fd is a read-only descriptor
 * of it, to hand to the peer and to keep open for evshm ps; the writable
 * memfd itself is closed.  0 or -errno; on failure nothing is left.
 */
int region_create(const struct region_info *info, struct region **out,
		  int *ro_fd);

/*
 * Map the peer's region from @fd (a descriptor it sent; this function does
 * not take ownership) read-only, after os_check_memfd() and a check of the
 * header against what the handshake announced (@kind, @ring_size).
 * 0, -EPROTO (not a sealed memfd of that size, or a wrong header), -ENOMEM.
 */
int region_attach(int fd, enum region_kind kind, uint32_t ring_size,
		  const struct region **out);

/* Does the header @r say what the handshake announced: magic, version,
 * @kind, hdr_size and @ring_size?  0 or -EPROTO.  Each field is read once;
 * the sizes used later are the handshake's, never the header's. */
int region_check_header(const struct region *r, enum region_kind kind,
			uint32_t ring_size);

/* Unmap a region of @ring_size (NULL is a no-op). */
void region_unmap(const struct region *r, uint32_t ring_size);

/* Record a sticky error and its reason in our region (for evshm ps). */
void region_set_error(struct region *r, int err, unsigned reason);

#endif
