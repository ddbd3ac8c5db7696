/* SPDX-License-Identifier: MIT */
/*
 * evshm: shared-memory message channels between unrelated Linux processes.
 *
 * Two processes meet at a Unix socket name (a filesystem path, or "@name"
 * for a Linux abstract name).  During the handshake each side hands the other
 * a sealed memfd (its outbound ring) and one end of a Unix socket pair (the
 * doorbell it sleeps on) with SCM_RIGHTS.  After that, messages travel through shared
 * memory with no system call per message; a doorbell is written only when
 * the peer has announced that it is going to sleep.  The socket stays open as
 * the liveness channel: a dead peer is noticed at once.
 *
 * Two patterns: a channel (evshm_listen/accept/connect: two processes, a
 * ring each way) and a topic (evshm_pub_* / evshm_sub_*: one publisher
 * writes each message once, every subscriber reads it in place).
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
 *    it never makes evshm crash, hang or touch memory out of bounds, and
 *    overruns a timeout by at most four slow kicks (it can make each kick
 *    walk a million epoll entries; four in a row break the channel).
 *    Descriptors it sends are taken only where the application
 *    asked for them (EVSHM_OPT_FDS).  docs/protocol.md, "Security
 *    considerations", says what is protected and what is not.
 *  - Who may be at the other end: by default only the same effective uid
 *    (a server of the same uid or root, for a client).  Abstract names have
 *    no permissions and anyone can bind one first: prefer a path in a
 *    directory only the intended users can enter.
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
 * Descriptors held (all close-on-exec; count them against RLIMIT_NOFILE):
 * a listener 3, a channel 10 at each end, a publisher 8 plus 3 per
 * subscriber, a subscriber 7.  Two of a channel's and one of a topic
 * end's are timerfds that carry the deadlines of waits with a timeout (an
 * epoll_wait() timeout costs a kernel timer per sleep).
 *
 * Minimum kernel: Linux 5.12 (memfd F_SEAL_FUTURE_WRITE; bells are emptied
 * with vmsplice(2), which needs nothing newer).  Linux 6.16 or later (SO_PASSRIGHTS) lets the kernel refuse
 * descriptors the application did not ask for; before it, evshm closes
 * such descriptors in a background thread (see EVSHM_OPT_FDS).
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
#define EVSHM_VERSION_MINOR 2
#define EVSHM_VERSION_PATCH 0
#define EVSHM_VERSION_STRING "0.2.0"

#if defined(__GNUC__)
#define EVSHM_API __attribute__((visibility("default")))
#else
#define EVSHM_API
#endif

/** A listening endpoint.  Opaque. */
struct evshm_listener;
/** A connected channel: two rings, one per direction.  Opaque. */
struct evshm_chan;
/** A topic's publisher.  Opaque. */
struct evshm_pub;
/** A topic's subscriber.  Opaque. */
struct evshm_sub;

/** Default size in bytes of a ring (one direction). */
#define EVSHM_RING_DEFAULT (1u << 20)
/** Smallest and largest ring size accepted (both powers of two). */
#define EVSHM_RING_MIN (1u << 12)
#define EVSHM_RING_MAX (1u << 30)
/** Largest message a ring of size @p ring can carry: ring / 2 - 16 bytes. */
#define EVSHM_MAX_MSG(ring) ((size_t)(ring) / 2 - 16)

/** Value for evshm_opts.spin_ns: never spin, sleep at once. */
#define EVSHM_SPIN_NEVER (-1)

/** evshm_opts.flags: this side accepts descriptors with messages
 *  (evshm_send_fds / evshm_recv_fds).  A channel carries descriptors in a
 *  direction only if the receiving side set it; without it the kernel
 *  refuses any descriptor the peer tries to send (Linux 6.16+), and
 *  evshm_send_fds() to such a peer fails with -EOPNOTSUPP. */
#define EVSHM_OPT_FDS 0x1u

/** evshm_opts.policy of a topic: the publisher waits for the slowest
 *  subscriber, and drops one that makes no progress for stall_timeout_ms. */
#define EVSHM_RELIABLE 1u
/** evshm_opts.policy of a topic: the publisher never waits; a subscriber
 *  that falls a ring behind skips what was overwritten and counts it. */
#define EVSHM_LATEST 2u

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
	/** Largest ring the other side may make us map, either direction;
	 *  0: 64 MiB.  On a listener, a client asking for more is refused
	 *  (-EFBIG on both sides); on connect, a server offering more is
	 *  refused before anything is mapped (-EFBIG). */
	uint32_t max_ring_size;
	/** Listen on a path only: permission bits of the socket file (e.g.
	 *  0600); 0 leaves what the umask gives. */
	uint32_t mode;
	/** How long a blocking call spins on shared memory before it sleeps,
	 *  in nanoseconds.  0 (the default) adapts: spin only while the peer
	 *  is awake on another CPU (each side publishes the CPU it last ran on
	 *  and whether it sleeps), for at most 50 µs, less when spinning has
	 *  not been paying; sleep at once when the peer shares our CPU or
	 *  sleeps.  > 0: spin that long before every sleep.
	 *  EVSHM_SPIN_NEVER: never spin. */
	int64_t spin_ns;
	/** Longest time the handshake may take, in milliseconds, on either
	 *  side: a silent peer holds neither evshm_accept() nor
	 *  evshm_connect() longer; 0: 2000. */
	int32_t handshake_timeout_ms;
	/** Listen / publish only: most channels (subscribers) from this
	 *  listener (publisher) that may be open at once; one more is refused
	 *  with -EUSERS.  0: no limit. */
	uint32_t max_clients;
	/** Who may be at the other end.  Called with the peer's credentials
	 *  (SO_PEERCRED) before anything else is done with it, on accept (a
	 *  refused client costs nothing: it gets -EACCES before it could send
	 *  anything but bytes) and on connect.  Return 0 to admit, or a
	 *  negative errno to refuse (the peer gets -EACCES, this side gets the
	 *  value returned).  NULL: a listener admits only processes of this
	 *  process's effective uid; a client admits only a server of its own
	 *  effective uid or root.  Called from the thread that accepts or
	 *  connects. */
	int (*authorize)(void *arg, pid_t pid, uid_t uid, gid_t gid);
	/** Passed to authorize. */
	void *authorize_arg;
	/** EVSHM_OPT_FDS, or 0. */
	uint32_t flags;
	/** Topic publisher: EVSHM_RELIABLE (0 means it) or EVSHM_LATEST. */
	uint32_t policy;
	/** Topic publisher, reliable: a subscriber that holds the publisher
	 *  up without releasing anything for this long is dropped (it gets
	 *  -ECONNABORTED); 0: 1000 ms.  If the publisher itself looks more
	 *  than a quarter of it (10 ms to 1 s) after it ran out (the machine
	 *  paused, or the application did not call), the subscriber gets
	 *  that quarter more, once, to move. */
	int32_t stall_timeout_ms;
	/** Topic subscriber: start with up to this many of the messages
	 *  already published and still in the ring (history), then the
	 *  stream; 0: only what is published from now on. */
	uint32_t history;
	uint32_t reserved_[4]; /**< must be zero */
};

/** Most descriptors one message can carry (the kernel's SCM_MAX_FD). */
#define EVSHM_MAX_FDS 253

/** Counters of one channel.  Each is a running total since the handshake. */
struct evshm_stats {
	uint64_t msgs_sent;    /**< messages committed to the outbound ring */
	uint64_t bytes_sent;   /**< payload bytes committed */
	uint64_t msgs_recv;    /**< messages released from the inbound ring */
	uint64_t bytes_recv;   /**< payload bytes released */
	uint64_t kicks_sent;   /**< doorbell writes to the peer (system calls) */
	uint64_t sleeps;       /**< times this side slept in the kernel */
	uint64_t spins;        /**< waits satisfied while spinning, no sleep
				    (published every 64 and at each sleep:
				    may trail by up to 63) */
	uint64_t lost;         /**< topic subscriber (latest): messages it
				    missed because the publisher lapped it */
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
 * A connection costs nothing before it is admitted: the client's
 * credentials and the policy (authorize, max_clients) are checked as soon
 * as it is accepted, and a refused client gets REJECT and is closed; it
 * cannot have queued descriptors.  An admitted client that has not sent
 * its hello yet is parked, and the call serves whichever client is ready
 * first; a parked client still silent after handshake_timeout_ms is
 * dropped.  At most 64 are parked: when full, one parked for more than
 * half the handshake timeout makes room (the newcomer's uid's oldest if
 * that uid has 16 parked, else the oldest of all); while all are younger,
 * new clients wait in the kernel's backlog.  Each call takes on a bounded number of new connections, so a
 * flood of them cannot hold it: with timeout 0 (an event loop on
 * evshm_listener_fd()) it returns promptly, -EAGAIN when nobody is ready
 * (call again when the descriptor polls readable).
 *
 * The call ends with the one connection it dealt with: 0 and a channel, or
 * that connection's failure, and the next call goes on with the next one:
 * a refusal (-EACCES or the authorize callback's error, -EUSERS), a failed
 * handshake (-EPROTO, -EPROTONOSUPPORT, -EFBIG, -ECONNRESET), or a parked
 * client dropped for silence (-ETIMEDOUT).
 *
 * Errors: -EINVAL, -EAGAIN, -ETIMEDOUT, the per-client errors above,
 * -ENOMEM, -EMFILE.
 */
EVSHM_API int evshm_accept(struct evshm_listener *l, struct evshm_chan **out,
			   int timeout_ms);

/** Close the listener and remove its socket file if it is still ours.
 *  Channels already accepted are not affected.  NULL is a no-op. */
EVSHM_API void evshm_listener_close(struct evshm_listener *l);

/**
 * Connect to the listener at @p name and run the handshake.
 * @p timeout_ms bounds the whole call, including a wait for room in the
 * server's backlog; the handshake itself is also bounded by
 * handshake_timeout_ms.  The server must pass the access policy
 * (authorize; by default the same effective uid, or root) before anything
 * is sent to it, and may not make us map a ring over max_ring_size.
 *
 * Errors: -EINVAL, -ENAMETOOLONG, -ENOENT / -ECONNREFUSED (nobody listens),
 * -ETIMEDOUT, -EPROTO (the server sent something invalid),
 * -EPROTONOSUPPORT (incompatible protocol version), -EPROTOTYPE (a topic
 * publisher listens there), -EFBIG (ring sizes refused, either way),
 * -EACCES (refused by the server's policy, or the server refused by ours),
 * -EUSERS (the server has all the clients it takes), -ECONNRESET, -ENOMEM,
 * -EMFILE; or the authorize callback's error.
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
 * -EINVAL, -EBUSY (several messages are peeked: evshm_peek_next()).  A
 * message already peeked is the one received.
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
 * Only if the peer accepts descriptors (it set EVSHM_OPT_FDS).
 *
 * Errors: those of evshm_send(), and -EOPNOTSUPP (the peer does not
 * accept descriptors), -EINVAL (nfds 0 or too many, fds NULL), -EBADF (a
 * descriptor is not open), -ETOOMANYREFS (the kernel's limit on
 * descriptors in flight, RLIMIT_NOFILE, is reached: let the receiver
 * catch up).
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
 * room for SCM_RIGHTS; a descriptor whose close could block (a socket, a
 * FUSE file: the peer chose it) is closed by one of at most four
 * background threads (the rest wait in a queue: a peer cannot make more),
 * so the call never waits for it.  Only on a channel where this
 * side set EVSHM_OPT_FDS.
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

/** Zero-copy send: give up the open reservation without publishing
 *  anything (the room is free again).  Errors: -EINVAL (nothing
 *  reserved). */
EVSHM_API int evshm_cancel(struct evshm_chan *c);

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

/**
 * Zero-copy receive of several messages at once: after evshm_peek() (or a
 * previous evshm_peek_next()) returned a message, point @p *ptr and
 * @p *len at the one after the last peeked, if it has arrived.  Never
 * waits.  Every pointer stays valid until evshm_release(), which then
 * hands back all the messages peeked since the last release with one
 * update of the shared head and one wake check: a consumer that falls
 * behind its producer saves that work per message (one that keeps up
 * gains nothing).  evshm_peek() returns the last one peeked;
 * evshm_recv() and evshm_recv_fds() refuse while more than one is.
 *
 * A message that carries descriptors is never added: -EAGAIN, and after
 * the release evshm_peek() or evshm_recv_fds() takes it as usual.
 * Errors: -EAGAIN (no further message yet, or not one to add: release,
 * then peek), -EINVAL (NULL, or nothing peeked).  Its -EAGAIN arms no
 * notification: before waiting on evshm_fd(), release and let a peek
 * with timeout 0 fail.  Receive side.
 */
EVSHM_API int evshm_peek_next(struct evshm_chan *c, const void **ptr,
			      size_t *len);

/** Zero-copy receive, step 2: hand the room of the peeked message (of
 *  every message peeked since the last release: evshm_peek_next()) back
 *  to the peer.  Errors: -EINVAL (nothing peeked). */
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

/**
 * Why the channel broke: a static string naming the check that failed
 * when a call returned -EPROTO (e.g. "ring: record longer than the largest
 * message"), or NULL while the channel has no sticky error.  With the
 * environment variable EVSHM_DEBUG=1 every failed check is also logged to
 * stderr with its place in the source.  Any thread.
 */
EVSHM_API const char *evshm_error_reason(const struct evshm_chan *c);

/* --- topics: one publisher, many subscribers ----------------------------- */

/** What a publisher knows about one of its subscribers.  The counters come
 *  from the subscriber's own memory: figures it could lie about. */
struct evshm_sub_info {
	pid_t pid;              /**< SO_PEERCRED at its connect */
	uid_t uid;
	gid_t gid;
	int asleep;             /**< it sleeps waiting for a message */
	uint64_t msgs_recv;     /**< messages it released */
	uint64_t bytes_recv;
	uint64_t lost;          /**< latest: messages it missed */
	uint64_t lag;           /**< messages published it has not released */
	uint64_t kicks;         /**< doorbell writes the publisher made to it */
};

/** Counters of a publisher. */
struct evshm_pub_stats {
	uint64_t msgs_sent;     /**< messages published */
	uint64_t bytes_sent;
	uint64_t kicks_sent;    /**< doorbell writes, all subscribers */
	uint64_t sleeps;        /**< times it slept waiting for room */
	uint64_t joined;        /**< subscribers admitted since it opened */
	uint64_t left;          /**< subscribers gone (closed, died) */
	uint64_t dropped;       /**< subscribers dropped for stalling */
	unsigned subscribers;   /**< attached now */
};

/**
 * Create a topic at @p name (as evshm_listen()) and publish to it.
 * Options: ring_size (the one ring every subscriber reads), policy
 * (EVSHM_RELIABLE or EVSHM_LATEST), stall_timeout_ms, max_clients (most
 * subscribers: counted at admission and again at the hello, where one
 * admitted while there was room may find it taken, -EUSERS), authorize,
 * mode, handshake_timeout_ms, spin_ns.
 * Subscribers join at any time: evshm_pub_serve() admits them, and every
 * call that waits, and one publish in 4096, also look.
 * Errors: those of evshm_listen().
 * Thread-safety: one thread at a time per publisher.
 */
EVSHM_API int evshm_pub_open(struct evshm_pub **out, const char *name,
			     const struct evshm_opts *opts);

/**
 * Admit subscribers that are joining, and notice those that left or (
 * reliable) stalled.  Waits up to @p timeout_ms for something to happen
 * when nothing is pending.  Returns the number of subscribers attached
 * after the call, or -EINVAL, -EMFILE, -ENOMEM.  A subscriber that fails
 * its handshake is dropped and counted, not reported.
 */
EVSHM_API int evshm_pub_serve(struct evshm_pub *p, int timeout_ms);

/**
 * Publish one message of @p len bytes (0 .. evshm_pub_max_msg()) to every
 * subscriber: written once, read by all in place.  Reliable: waits up to
 * @p timeout_ms for the slowest subscriber to make room (one that stalls
 * past stall_timeout_ms is dropped, and the wait goes on without it).
 * Latest: never waits.  With no subscriber the message is published to
 * nobody (a late joiner may still get it as history).
 * Errors: -EMSGSIZE, -EAGAIN (timeout 0), -ETIMEDOUT, -EBUSY (a
 * reservation is open), -EINVAL.
 */
EVSHM_API int evshm_pub_send(struct evshm_pub *p, const void *buf, size_t len,
			     int timeout_ms);
/** Zero-copy publish, step 1: room for up to @p len bytes at *@p ptr
 *  (16-byte aligned, in the shared ring).  Errors as evshm_pub_send(). */
EVSHM_API int evshm_pub_reserve(struct evshm_pub *p, size_t len, void **ptr,
				int timeout_ms);
/** Zero-copy publish, step 2: publish the reserved message with its final
 *  length.  Never waits.  Errors: -EINVAL. */
EVSHM_API int evshm_pub_commit(struct evshm_pub *p, size_t len);
/** Give up the open reservation without publishing anything.  Errors:
 *  -EINVAL (nothing reserved). */
EVSHM_API int evshm_pub_cancel(struct evshm_pub *p);

/**
 * A descriptor for poll/epoll: readable when a subscriber is joining or
 * leaving (call evshm_pub_serve()), or when room may have appeared after a
 * publish failed with -EAGAIN, or when a subscriber holding such a publish
 * up has stalled for stall_timeout_ms (its clock runs across the retries;
 * the next publish drops it).  Owned by the publisher.
 */
EVSHM_API int evshm_pub_fd(struct evshm_pub *p);
/** Largest message the topic carries. */
EVSHM_API size_t evshm_pub_max_msg(const struct evshm_pub *p);
/** Fill @p out with up to @p n subscribers; returns how many there are. */
EVSHM_API int evshm_pub_subscribers(const struct evshm_pub *p,
				    struct evshm_sub_info *out, unsigned n);
/** Copy the publisher's counters into @p st. */
EVSHM_API void evshm_pub_stats(const struct evshm_pub *p,
			       struct evshm_pub_stats *st);
/** Close the topic: subscribers read what was published, then -EPIPE;
 *  the socket file is removed.  NULL is a no-op. */
EVSHM_API void evshm_pub_close(struct evshm_pub *p);

/**
 * Subscribe to the topic at @p name.  Options: history (start with up to
 * that many messages still in the ring), authorize, max_ring_size,
 * handshake_timeout_ms, spin_ns.  @p timeout_ms bounds the call.
 * Errors: those of evshm_connect(); -EPROTOTYPE if a channel server
 * listens there.
 * Thread-safety: one thread at a time per subscriber.
 */
EVSHM_API int evshm_sub_open(struct evshm_sub **out, const char *name,
			     const struct evshm_opts *opts, int timeout_ms);
/**
 * Receive the next message into @p buf.  Returns its length.  Latest: if
 * the publisher lapped us, the messages overwritten are skipped and
 * counted (evshm_sub_lost()); what is delivered is never torn (it is
 * checked again after the copy; a message overwritten meanwhile is
 * skipped, counted, and the next one tried).  After the publisher has
 * gone, what it published is still delivered, then -EPIPE.
 *
 * Latest, a publisher that overwrites each message just as it is copied
 * (hostile, or a flood of tiny messages through a small ring): the tries
 * of a call with a timeout end with it; a call with timeout 0 gives up
 * with -EAGAIN after 17 messages in a row overwritten while copied, and
 * evshm_sub_fd() then polls readable as soon as the publisher has written
 * the message that overwrote the last copy, so an event loop neither
 * stays in the call nor misses a message; a call with timeout -1 tries
 * until a copy comes whole, as it would wait for a publisher that never
 * publishes.
 *
 * Errors: -EMSGSIZE (the message stays; latest: until it is overwritten,
 * then the next call skips it, counted), -EAGAIN, -ETIMEDOUT, -EPIPE,
 * -ECONNABORTED (the publisher dropped us: we stalled a reliable topic),
 * -EPROTO, -EINVAL, -EBUSY (several messages are peeked:
 * evshm_sub_peek_next()).
 */
EVSHM_API int evshm_sub_recv(struct evshm_sub *s, void *buf, size_t cap,
			     int timeout_ms);
/**
 * Zero-copy receive, step 1: point at the next message in the
 * publisher's ring.  Reliable: the bytes stay until evshm_sub_release(),
 * unless the publisher drops us meanwhile (then release says so).
 * Latest: the publisher may overwrite them while you read (it never
 * waits); evshm_sub_release() then returns -ESTALE: discard what you read,
 * and peek again.  With timeout 0, a peek after 17 such messages in a row
 * (no release succeeded) returns -EAGAIN, as evshm_sub_recv() does, and
 * evshm_sub_fd() then polls readable as it says.
 * Errors as evshm_sub_recv().
 */
EVSHM_API int evshm_sub_peek(struct evshm_sub *s, const void **ptr,
			     size_t *len, int timeout_ms);
/**
 * Zero-copy receive of several messages at once, as evshm_peek_next():
 * after a peek, point at the message after the last one peeked, if it
 * has arrived; never waits; evshm_sub_release() then releases them all.
 * Latest: if the publisher overwrote any of them meanwhile, the release
 * says -ESTALE for all of them: discard everything read since the last
 * release (the next peek jumps, counts what was overwritten as lost, and
 * delivers again those that were still whole).  The longer a batch, the
 * likelier that is.  evshm_sub_recv() refuses while more than one
 * message is peeked.
 * Errors: -EAGAIN (no further message yet, or not one to add), -EINVAL
 * (NULL, or nothing peeked).  As with evshm_peek_next(), its -EAGAIN arms
 * nothing for evshm_sub_fd(): a peek with timeout 0 must fail first.
 */
EVSHM_API int evshm_sub_peek_next(struct evshm_sub *s, const void **ptr,
				  size_t *len);
/** Zero-copy receive, step 2 (of every message peeked since the last
 *  release).  -ESTALE (latest): a message was overwritten while it was
 *  peeked.  -ECONNABORTED (reliable): the publisher dropped us, and what
 *  was read may have been overwritten: discard it; the subscription has
 *  ended.  -EINVAL: nothing peeked. */
EVSHM_API int evshm_sub_release(struct evshm_sub *s);
/** Messages missed since the subscription began (latest: lapped). */
EVSHM_API uint64_t evshm_sub_lost(const struct evshm_sub *s);
/** The topic's policy, as its publisher announced it: EVSHM_RELIABLE or
 *  EVSHM_LATEST; 0 for NULL. */
EVSHM_API unsigned evshm_sub_policy(const struct evshm_sub *s);
/** Pollable descriptor, as evshm_fd(). */
EVSHM_API int evshm_sub_fd(struct evshm_sub *s);
/** Largest message of the topic. */
EVSHM_API size_t evshm_sub_max_msg(const struct evshm_sub *s);
/** Counters (msgs_recv, bytes_recv, sleeps, spins, kicks_sent, lost). */
EVSHM_API void evshm_sub_stats(const struct evshm_sub *s,
			       struct evshm_stats *st);
/** The publisher's credentials (SO_PEERCRED).  0 or -EINVAL. */
EVSHM_API int evshm_sub_peer_cred(const struct evshm_sub *s, pid_t *pid,
				  uid_t *uid, gid_t *gid);
/** As evshm_error_reason(). */
EVSHM_API const char *evshm_sub_error_reason(const struct evshm_sub *s);
/** Close the subscription.  NULL is a no-op. */
EVSHM_API void evshm_sub_close(struct evshm_sub *s);

/* --- introspection: evshm ps -------------------------------------------- */

/** What a region says about itself (see evshm_region_read()). */
enum evshm_region_kind {
	EVSHM_REGION_CHAN = 1, /**< one side of a channel */
	EVSHM_REGION_PUB = 2,  /**< a topic's publisher */
	EVSHM_REGION_SUB = 3,  /**< a topic's subscriber */
};

/** Bits of evshm_region_info.tx_state and rx_state. */
#define EVSHM_STATE_ASLEEP 0x1u    /**< blocked in the kernel, waiting */
#define EVSHM_STATE_FENCELESS 0x2u /**< streaming without wakeup fences */

/**
 * The header of one side's shared region, as its owner wrote it.  Every
 * figure is the owner's own say: for a tool, not for decisions.
 */
struct evshm_region_info {
	unsigned kind;           /**< enum evshm_region_kind */
	unsigned role;           /**< 1 client (subscriber), 2 server (publisher) */
	uint32_t pid;            /**< the owner, as it sees itself */
	uint32_t ring_size;      /**< its outbound ring; 0 for a subscriber */
	uint32_t features;       /**< 1: it accepts descriptors */
	uint8_t id[16];          /**< the channel's (topic's) identity: both
				      regions of a channel carry the same */
	char name[108];          /**< where it met its peer ("" if unknown) */
	uint64_t tail;           /**< bytes it committed to its ring */
	uint64_t head;           /**< bytes it released of the peer's ring */
	uint64_t msgs_sent, bytes_sent, msgs_recv, bytes_recv;
	uint64_t lost;           /**< subscriber: messages it missed */
	uint64_t kicks_sent, sleeps, spins;
	uint32_t tx_state, rx_state; /**< EVSHM_STATE_* of its two roles */
	uint32_t cpu;            /**< the CPU it last waited on, + 1; 0 unknown */
	int32_t error;           /**< its sticky error, 0 */
	const char *reason;      /**< the check that set it (static), or NULL */
	uint64_t horizon;        /**< publisher: bytes below may be overwritten */
	uint64_t subscribers;    /**< publisher: attached now */
	uint64_t dropped;        /**< publisher: subscribers dropped */
};

/**
 * Read the header of an evshm region from @p fd (a memfd named
 * "evshm:..."; e.g. one opened through /proc/PID/fd/N) into @p info,
 * with pread(): nothing is mapped, written or waited for, so looking can
 * never disturb a channel, and a file truncated meanwhile cannot fault.
 * Everything is validated before it is reported (a region is hostile
 * input too): wrong magic, version, kind, sizes or an unterminated name
 * give -EPROTO.  Errors: -EINVAL, -EPROTO, -EIO (short), or pread's
 * -errno.  Any thread.
 */
EVSHM_API int evshm_region_read(int fd, struct evshm_region_info *info);

/** A static string naming an evshm error (a negative errno), e.g.
 *  "peer has gone" for -EPIPE; falls back to strerror's text. */
EVSHM_API const char *evshm_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* EVSHM_H */
