/* SPDX-License-Identifier: MIT */
/*
 * socket_peers.h: the messages the socket tests and their peer executables
 * exchange.  Both are built from this tree on the same machine, so plain
 * structs are fine.
 */
#ifndef EVSHM_TESTS_SOCKET_PEERS_H
#define EVSHM_TESTS_SOCKET_PEERS_H

#include <stdint.h>

/* Everything a test waits for a peer is bounded by this. */
#define SP_TIMEOUT_MS 20000

/* --- test_fdpass_xproc <-> peer_fdpass ------------------------------- */

/* A -> B, with two descriptors: [0] an eventfd, [1] a memfd. */
struct sp_hello {
	uint64_t size;      /* of the memfd */
	uint32_t sealed;    /* 1: fully sealed (F_SEAL_FUTURE_WRITE), read-only
			     * for B; 0: SHRINK|GROW|SEAL, B maps it writable */
	uint32_t seed;      /* the pattern B writes (0) or checks (1) */
	int32_t a_fds[2];   /* A's own numbers for them, for the log */
};

/* B -> A after checking the descriptors. */
struct sp_report {
	int32_t b_fds[2];   /* the numbers B received them as */
	int32_t pid;
};

/* A -> B (sealed case): A rewrote the memory with @seed; check, then kick. */
struct sp_go {
	uint32_t seed;
};

/* --- test_fdpass_leak <-> peer_leak ------------------------------------ */

/* Server -> peer each cycle, with SP_LEAK_NFDS descriptors. */
#define SP_LEAK_NFDS 3
struct sp_cycle {
	uint32_t seq;
};

/* Peer -> server, on one last connection. */
struct sp_leak_report {
	int32_t fds_start;
	int32_t fds_end;
	uint32_t cycles;
	uint32_t redials; /* connections that ended before the server took them */
};

/* --- test_endpoint <-> peer_endpoint ----------------------------------- */

/* Peer -> test ("cred" mode): what each side sees of the other. */
struct sp_cred {
	int32_t pid;          /* the peer's getpid() */
	int32_t ppid;         /* the peer's getppid(): the test */
	int32_t server_pid;   /* SO_PEERCRED on the peer's socket */
	uint32_t server_uid;
	uint32_t server_gid;
};

#endif
