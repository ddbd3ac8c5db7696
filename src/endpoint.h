/* SPDX-License-Identifier: MIT */
/*
 * endpoint.h: SOCK_SEQPACKET Unix endpoints on a filesystem path or a Linux
 * abstract name ("@name").  Sockets are SOCK_CLOEXEC; callers pass
 * MSG_DONTWAIT / use poll, so blocking mode does not matter.
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
 * -EADDRINUSE (never stolen); a path that exists and is not a socket:
 * -EADDRINUSE.  The check-unlink-bind runs under flock() on the parent
 * directory so two evshm servers cannot both replace the same stale file.
 * @mode != 0: chmod the socket file to it (paths only).
 * Errors: -EINVAL, -ENAMETOOLONG, -EADDRINUSE, -EACCES, -ENOENT,
 * -ENOTDIR, -EMFILE, -ENOMEM.
 */
int ep_listen(struct ep_listener *l, const char *name, unsigned mode,
	      int backlog);
/* Close the socket and unlink its file if it is still the one we bound. */
void ep_listener_close(struct ep_listener *l);

/* Accept one connection (accept4 SOCK_CLOEXEC), waiting up to
 * @timeout_ms.  Errors: -EAGAIN (timeout 0), -ETIMEDOUT, -EMFILE, ... */
int ep_accept(const struct ep_listener *l, int timeout_ms, int *out_fd);

/* Connect to @name.  Errors: -EINVAL, -ENAMETOOLONG, -ENOENT,
 * -ECONNREFUSED, -EACCES, -EAGAIN (backlog full), -EMFILE. */
int ep_connect(const char *name, int *out_fd);

/* SO_PEERCRED of a connected socket. */
int ep_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

#endif
