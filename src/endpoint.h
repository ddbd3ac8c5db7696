/* SPDX-License-Identifier: MIT */
/*
 * endpoint.h: SOCK_SEQPACKET Unix endpoints on a filesystem path or a Linux
 * abstract name ("@name").  Every socket made here (listening, accepted,
 * connected) is SOCK_CLOEXEC | SOCK_NONBLOCK: callers wait in poll() against
 * a deadline (fdpass.c also passes MSG_DONTWAIT, so a socket whose mode was
 * changed behaves the same).
 */
#ifndef EVSHM_ENDPOINT_H
#define EVSHM_ENDPOINT_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct ep_addr {
	struct sockaddr_un sun;
	socklen_t len;  /* length to pass to bind/connect */
	bool abstract;
};

/* Parse @name: "@x" is the abstract name "x", anything else a path.
 * Errors: -EINVAL (NULL, "" or "@"), -ENAMETOOLONG. */
int ep_parse(const char *name, struct ep_addr *out);

struct ep_listener {
	int fd;
	struct ep_addr addr;
	dev_t dev;   /* identity of the socket file we bound (paths only) */
	ino_t ino;
};

/*
 * Bind and listen at @name.  A path whose socket file refuses connections
 * (its server died) is unlinked and bound anew; one that accepts is live:
 * -EADDRINUSE (never stolen); a path that exists and is not a socket (a
 * file, a directory, a symlink even to a stale socket): -EADDRINUSE.
 *
 * The whole bind .. listen, and the probe-unlink-bind, runs under
 * flock(LOCK_EX) on the parent directory, so two evshm servers can neither
 * both replace one stale file nor take each other's freshly bound,
 * not yet listening socket for a stale one.  The lock is waited for at most
 * a second (anyone who can read the directory can hold it); without it, or
 * if the directory is not readable, a free path is still bound but a stale
 * file is not replaced (-EADDRINUSE).
 * The liveness probe is a real connect(): a live server sees a connection
 * that closes at once (its accept yields a socket that reads end-of-file).
 *
 * @mode != 0: the socket file gets exactly that mode (paths only; ignored
 * for abstract names), set in a private directory before the file appears
 * at @name, so neither a client nor another user sees it with the umask's
 * bits, and no name another user can swap is ever resolved to chmod it.
 * Connecting needs write permission.
 * @backlog <= 0: SOMAXCONN.
 * A relative path is resolved again by ep_listener_close(): do not chdir()
 * in between.  @l->fd is -1 after a failure.
 * Errors: -EINVAL, -ENAMETOOLONG, -EADDRINUSE, -EACCES, -ENOENT,
 * -ENOTDIR, -EMFILE, -ENOMEM.
 */
int ep_listen(struct ep_listener *l, const char *name, unsigned mode,
	      int backlog);
/* Unlink the socket file if it is still the one we bound (same st_dev and
 * st_ino: sound because our open socket pins that inode), then close the
 * socket.  Safe on a closed or failed listener; sets l->fd to -1. */
void ep_listener_close(struct ep_listener *l);
/* The same, but hand the listening socket to the caller instead of closing
 * it (-1 if there was none). */
int ep_listener_release(struct ep_listener *l);

/* Accept one connection (accept4 SOCK_CLOEXEC | SOCK_NONBLOCK), waiting up
 * to @timeout_ms.  Errors: -EINVAL, -EAGAIN (timeout 0), -ETIMEDOUT,
 * -EMFILE, -ENFILE, -ENOMEM. */
int ep_accept(const struct ep_listener *l, int timeout_ms, int *out_fd);

/* Connect to @name.  A server whose backlog is full is waited for up to
 * @timeout_ms (-1 forever, 0 never: -EAGAIN); otherwise AF_UNIX connects
 * complete at once.  The socket is SOCK_NONBLOCK afterwards.
 * Errors: -EINVAL, -ENAMETOOLONG, -ENOENT (no such path), -ECONNREFUSED
 * (nobody listens: stale file, unused abstract name, not a socket),
 * -EACCES, -EPROTOTYPE (a listener of another socket type), -EAGAIN,
 * -ETIMEDOUT, -EMFILE. */
int ep_connect(const char *name, int timeout_ms, int *out_fd);
/* The same, refusing descriptors from the start (SO_PASSRIGHTS 0 before
 * connect(): the server cannot queue any until we allow it).  *@rights_off
 * says whether the kernel could (Linux 6.16+). */
int ep_connect_norights(const char *name, int timeout_ms, int *out_fd,
			bool *rights_off);

/* SO_PEERCRED of a connected socket: the peer's pid, uid and gid as of its
 * connect() (client) or listen() (server).  Each out pointer may be NULL. */
int ep_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

#endif
