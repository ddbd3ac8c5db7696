/* SPDX-License-Identifier: MIT */
/*
 * evshm: shared-memory message channels between unrelated Linux processes.
 *
 * Two processes meet at a Unix socket name (a filesystem path, or "@name"
 * for a Linux abstract name).  During the handshake each side hands the other
 * a sealed memfd (its outbound ring) and two eventfds (its doorbells) with
 * SCM_RIGHTS.  After that, messages travel through shared memory with no
 * system call per message; an eventfd is written only when the peer has
 * announced that it is going to sleep.  The socket stays open as the liveness
 * channel: a dead peer is noticed at once.
 *
 * Conventions (the liburing ones):
 *  - Every function that can fail returns 0 (or a non-negative count) on
 *    success and a negative errno value on failure.  errno is not used.
 *  - Handles are opaque.  Every descriptor evshm creates is close-on-exec.
 *  - timeout_ms on every call that may wait: -1 waits forever, 0 never waits
 *    (-EAGAIN instead), > 0 waits at most that many milliseconds
 *    (-ETIMEDOUT).  EINTR is retried internally with the remaining time.
 *  - The peer is never trusted: anything it writes into shared memory is
 *    validated; a corrupt peer makes calls on that channel fail with -EPROTO,
 *    it never makes evshm crash, hang or touch memory out of bounds.
 *
 * Thread-safety: a channel has a send side (evshm_send, evshm_send_fds,
 * evshm_reserve, evshm_commit) and a receive side (evshm_recv,
 * evshm_recv_fds, evshm_peek, evshm_release).
 * One thread may use the send side while another uses the receive side of
 * the same channel; two threads must not use the same side at once.
 * evshm_stats, evshm_peer_cred, evshm_fd and evshm_max_msg may be called from
 * any thread.  evshm_close must not race with any other call on the channel.
 * Different channels and listeners are independent.
 *
 * Minimum kernel: Linux 5.12 (memfd F_SEAL_FUTURE_WRITE, RWF_NOWAIT reads
 * on eventfd).
 */
#ifndef EVSHM_H
#define EVSHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVSHM_VERSION_MAJOR 0
#define EVSHM_VERSION_MINOR 1
#define EVSHM_VERSION_PATCH 0
#define EVSHM_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define EVSHM_API __attribute__((visibility("default")))
#else
#define EVSHM_API
#endif

/** A listening endpoint.  Opaque. */
struct evshm_listener;
/** A connected channel: two rings, one per direction.  Opaque. */
struct evshm_chan;

/** Default size in bytes of a ring (one direction). */
#define EVSHM_RING_DEFAULT (1u << 20)
/** Smallest and largest ring size accepted (both powers of two). */
#define EVSHM_RING_MIN (1u << 12)
#define EVSHM_RING_MAX (1u << 30)
/** Largest message a ring of size @p ring can carry: ring / 2 - 8 bytes. */
#define EVSHM_MAX_MSG(ring) ((size_t)(ring) / 2 - 8)

/** Value for evshm_opts.spin_ns: never spin, sleep at once. */
#define EVSHM_SPIN_NEVER (-1)

/**
 * Options for evshm_listen() and evshm_connect().  Zero-initialise it
 * (`struct evshm_opts o = {0};`): every field's zero means "the default".
 * Passing NULL instead of a pointer means all defaults.
 */
struct evshm_opts {
	/** Size of the ring this side writes (power of two between
	 *  EVSHM_RING_MIN and EVSHM_RING_MAX); 0: EVSHM_RING_DEFAULT.
	 *  On a listener it is the size of every server-to-client ring
	 *  unless the client asks for another (see peer_ring_size).
	 *  Memory is touched as it is used.  For streams of small messages
	 *  a ring larger than the CPU's L2 cache is faster (the producer
	 *  then rarely rewrites lines the consumer's core still holds):
	 *  docs/performance.md measured 16 MiB best on its machine. */
	uint32_t ring_size;
	/** Connect only: the size the client asks for the server-to-client
	 *  ring; 0 lets the server choose (its ring_size). */
	uint32_t peer_ring_size;
	/** Listen only: largest ring a client may ask for, either direction;
	 *  0: 64 MiB.  A client asking for more is refused with -EFBIG. */
	uint32_t max_ring_size;
	/** Listen on a path only: permission bits of the socket file (e.g.
	 *  0600); 0 leaves what the umask gives. */
	uint32_t mode;
	/** How long a blocking call spins on shared memory before it sleeps,
	 *  in nanoseconds.  0: 30 µs (about what a cross-CPU wakeup costs)
	 *  when this thread may run on more than one CPU, else no spin.
	 *  EVSHM_SPIN_NEVER: never spin. */
	int64_t spin_ns;
	/** Longest time the handshake may take, in milliseconds, on either
	 *  side (bounds the time a silent peer can hold evshm_accept); 0: 2000. */
	int32_t handshake_timeout_ms;
	/** Listen only: most channels accepted from this listener that may be
	 *  open at once; a client over the limit is refused with -EUSERS.
	 *  0: no limit. */
	uint32_t max_clients;
	/** Who may be at the other end.  Called with the peer's credentials
	 *  (SO_PEERCRED) before anything else is done with it, on accept and,
	 *  if set, on connect.  Return 0 to admit, or a negative errno to
	 *  refuse (the peer gets -EACCES, this side gets the value returned).
	 *  NULL: on a listener, admit only processes of this process's
	 *  effective uid; on connect, admit any server.  Called from the
	 *  thread that accepts or connects. */
	int (*authorize)(void *arg, pid_t pid, uid_t uid, gid_t gid);
	/** Passed to authorize. */
	void *authorize_arg;
	uint32_t reserved_[6]; /**< must be zero */
};

/** Most descriptors one message can carry (the kernel's SCM_MAX_FD). */
#define EVSHM_MAX_FDS 253

/** Counters of one channel.  Each is a running total since the handshake. */
struct evshm_stats {
	uint64_t msgs_sent;    /**< messages committed to the outbound ring */
	uint64_t bytes_sent;   /**< payload bytes committed */
	uint64_t msgs_recv;    /**< messages released from the inbound ring */
	uint64_t bytes_recv;   /**< payload bytes released */
	uint64_t kicks_sent;   /**< eventfd writes to the peer (system calls) */
	uint64_t sleeps;       /**< times this side slept in poll() */
	uint64_t spins;        /**< waits satisfied while spinning, no sleep */
};

/** The version of the library that is running, e.g. "0.1.0". */
EVSHM_API const char *evshm_version(void);

/**
 * Listen for channels at @p name: "@foo" is the Linux abstract name "foo",
 * anything else a filesystem path.  A socket file left behind by a dead
 * server (connect is refused) is replaced; a live one is never stolen.
 * The socket file is removed by evshm_listener_close().
 *
 * Errors: -EINVAL (NULL argument, empty name, bad option), -ENAMETOOLONG
 * (name does not fit a sockaddr_un), -EADDRINUSE (a live server listens
 * there, or the path is not a socket), -EACCES / -ENOENT / -ENOTDIR (from
 * the filesystem), -ENOMEM, -EMFILE.
 * Thread-safety: the returned listener is used by one thread at a time.
 */
EVSHM_API int evshm_listen(struct evshm_listener **out, const char *name,
			   const struct evshm_opts *opts);

/**
 * A descriptor that polls readable when evshm_accept() has something to do:
 * a client is waiting, or a client parked earlier has sent its hello or
 * gone.  Owned by the listener: do not close it.
 */
EVSHM_API int evshm_listener_fd(const struct evshm_listener *l);

/**
 * Accept one client and run the handshake with it.  Waits at most
 * @p timeout_ms for a client that is ready.
 *
 * One silent client cannot hold the listener: a connection whose hello has
 * not arrived is parked (up to 64 of them), and the call serves whichever
 * client is ready first.  A parked client still silent after the
 * listener's handshake_timeout_ms is dropped, and that call returns
 * -ETIMEDOUT.  A client whose handshake fails is dropped and its resources
 * released: the call then fails with that error (-EPROTO,
 * -EPROTONOSUPPORT, -EFBIG, -EUSERS, -EACCES or the authorize callback's
 * error, -ETIMEDOUT, -ECONNRESET) and the next call serves the next one.
 * With timeout 0 (an event loop on evshm_listener_fd()) the call never
 * waits: -EAGAIN when no client is ready.
 *
 * Errors: -EINVAL, -EAGAIN, -ETIMEDOUT, the handshake errors above,
 * -ENOMEM, -EMFILE.
 */
EVSHM_API int evshm_accept(struct evshm_listener *l, struct evshm_chan **out,
			   int timeout_ms);

/** Close the listener and remove its socket file if it is still ours.
 *  Channels already accepted are not affected.  NULL is a no-op. */
EVSHM_API void evshm_listener_close(struct evshm_listener *l);

/**
 * Connect to the listener at @p name and run the handshake.
 * @p timeout_ms bounds the whole call.
 *
 * Errors: -EINVAL, -ENAMETOOLONG, -ENOENT / -ECONNREFUSED (nobody listens),
 * -ETIMEDOUT, -EPROTO (the server sent something invalid),
 * -EPROTONOSUPPORT (incompatible protocol version), -EFBIG (ring sizes
 * refused), -EACCES (refused by the server's policy), -EUSERS (the server
 * has all the clients it takes), -ECONNRESET, -ENOMEM, -EMFILE; or the
 * authorize callback's error.
 */
EVSHM_API int evshm_connect(struct evshm_chan **out, const char *name,
			    const struct evshm_opts *opts, int timeout_ms);

/**
 * Copy one message of @p len bytes (0 .. evshm_max_msg()) into the outbound
 * ring.  Waits up to @p timeout_ms for room.
 *
 * A send that finds room does not look at the socket (that would cost a
 * system call per message): if the peer died since this side last waited,
 * the message goes into a ring nobody reads, as data goes into a socket
 * buffer.  The death is reported as soon as any call on the channel waits
 * (a full ring, an empty one), by evshm_recv(), and by evshm_fd() polling
 * readable.
 *
 * Errors: -EMSGSIZE (len > evshm_max_msg()), -EAGAIN (timeout 0, ring
 * full), -ETIMEDOUT, -EPIPE (the peer has gone), -EPROTO (the peer broke
 * the protocol), -EINVAL, -EBUSY (a reservation is open).
 */
EVSHM_API int evshm_send(struct evshm_chan *c, const void *buf, size_t len,
			 int timeout_ms);

/**
 * Receive one message, copying it into @p buf of @p cap bytes.  Returns its
 * length.  After the peer has gone, every message it committed is still
 * delivered; then -EPIPE.
 *
 * Errors: -EMSGSIZE (cap too small: the message stays, peek to see its
 * size), -EAGAIN (timeout 0, nothing pending), -ETIMEDOUT, -EPIPE, -EPROTO,
 * -EINVAL.  A message already peeked is the one received.
 */
EVSHM_API int evshm_recv(struct evshm_chan *c, void *buf, size_t cap,
			 int timeout_ms);

/**
 * Send a message with @p nfds descriptors attached (1 .. EVSHM_MAX_FDS).
 * The receiver gets new descriptors for the same open files (as if dup'd),
 * with this message and in order with all other messages; this side keeps
 * its own and may close them once the call returns.  Costs one sendmsg()
 * on the socket (descriptors cannot travel through shared memory); the
 * bytes still go through the ring.  Waits up to @p timeout_ms for ring room
 * and socket buffer room.
 *
 * Errors: those of evshm_send(), and -EINVAL (nfds 0 or too many, fds
 * NULL), -EBADF (a descriptor is not open), -ETOOMANYREFS (the kernel's
 * limit on descriptors in flight, RLIMIT_NOFILE, is reached: let the
 * receiver catch up).
 */
EVSHM_API int evshm_send_fds(struct evshm_chan *c, const void *buf, size_t len,
			     const int *fds, unsigned nfds, int timeout_ms);

/**
 * Receive a message and the descriptors attached to it.  On entry
 * @p *nfds is the room in @p fds; on return it is the number stored (0 for
 * a message that carried none).  The descriptors are close-on-exec and
 * the caller owns them.  If the message carries more than @p *nfds, it is
 * not consumed: -EOVERFLOW, and @p *nfds is set to the number needed.
 * Returns the message length.
 *
 * A message with descriptors read by evshm_recv() or evshm_peek() /
 * evshm_release() has them closed on release, like a socket read without
 * room for SCM_RIGHTS.
 * Errors: those of evshm_recv(), -EOVERFLOW, -EPROTO (the peer announced
 * descriptors it did not send).
 */
EVSHM_API int evshm_recv_fds(struct evshm_chan *c, void *buf, size_t cap,
			     int *fds, unsigned *nfds, int timeout_ms);

/**
 * Zero-copy send, step 1: reserve room for a message of up to @p len bytes
 * and point @p *ptr at it (8-byte aligned, inside shared memory).  Write
 * the message there, then call evshm_commit().  Only one reservation may
 * be open.  Errors as evshm_send().
 */
EVSHM_API int evshm_reserve(struct evshm_chan *c, size_t len, void **ptr,
			    int timeout_ms);

/**
 * Zero-copy send, step 2: publish the reserved message with its final
 * length @p len (at most the reserved length).  Never waits.
 * Errors: -EINVAL (nothing reserved, len too large), -EPIPE, -EPROTO.
 */
EVSHM_API int evshm_commit(struct evshm_chan *c, size_t len);

/**
 * Zero-copy receive, step 1: wait up to @p timeout_ms for a message and
 * point @p *ptr at its bytes in shared memory, @p *len at its length.
 * The pointer stays valid until evshm_release() or evshm_close().  Peeking
 * again without a release returns the same message.
 *
 * The bytes live in the peer's memory: a hostile peer can change them
 * while you read.  Copy what you validate.
 * Errors as evshm_recv(), without -EMSGSIZE.
 */
EVSHM_API int evshm_peek(struct evshm_chan *c, const void **ptr, size_t *len,
			 int timeout_ms);

/** Zero-copy receive, step 2: hand the peeked message's room back to the
 *  peer.  Errors: -EINVAL (nothing peeked). */
EVSHM_API int evshm_release(struct evshm_chan *c);

/**
 * A descriptor for the caller's poll/epoll loop.  It polls readable when a
 * message may be pending, when room may have appeared after a send failed
 * with -EAGAIN, or when the peer has gone; after evshm_send_fds() failed
 * with -EAGAIN because the socket was full (descriptors wait there), it
 * also polls writable (EPOLLOUT) until the next send succeeds.  Wakeups
 * can be spurious.  Taking the descriptor costs a bell reset (one system
 * call) per sleep of this channel from then on, to keep it accurate.
 *
 * Notification is armed by a failed non-blocking call: drain with
 * evshm_recv(..., 0) until it returns -EAGAIN (and retry a pending send
 * until it succeeds or returns -EAGAIN) before waiting on the descriptor
 * again, as with edge-triggered epoll.  Owned by the channel: do not close.
 */
EVSHM_API int evshm_fd(struct evshm_chan *c);

/** Largest message, in bytes, this channel can send. */
EVSHM_API size_t evshm_max_msg(const struct evshm_chan *c);

/** Copy the channel's counters into @p st. */
EVSHM_API void evshm_stats(const struct evshm_chan *c, struct evshm_stats *st);

/**
 * The peer's credentials as the kernel saw them when the socket connected
 * (SO_PEERCRED).  Any of the pointers may be NULL.  Returns 0 or -EINVAL.
 */
EVSHM_API int evshm_peer_cred(const struct evshm_chan *c, pid_t *pid,
			      uid_t *uid, gid_t *gid);

/**
 * Close the channel: the peer sees the hang-up once it has drained what was
 * committed.  Unmaps the shared memory and closes every descriptor.
 * NULL is a no-op.
 */
EVSHM_API void evshm_close(struct evshm_chan *c);

/** A static string naming an evshm error (a negative errno), e.g.
 *  "peer has gone" for -EPIPE; falls back to strerror's text. */
EVSHM_API const char *evshm_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* EVSHM_H */
