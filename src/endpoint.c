/* SPDX-License-Identifier: MIT */
/*
 * endpoint.c: SOCK_SEQPACKET Unix endpoints (listen, accept, connect).
 *
 * Every socket is SOCK_CLOEXEC | SOCK_NONBLOCK: waits happen in poll()
 * against a deadline, never inside a system call.
 *
 * Replacing a stale socket file.  A server that dies leaves its socket file
 * behind, and bind() on it fails with EADDRINUSE.  Whether the file is
 * stale is learnt by connecting to it: ECONNREFUSED means no socket is
 * listening there any more.  But ECONNREFUSED is also what a server gets
 * between its own bind() and listen(), so a second server probing at that
 * moment would unlink a live file.  Hence the whole bind .. listen sequence
 * (and the probe-unlink-bind) runs under flock(LOCK_EX) on the parent
 * directory: no evshm server can see another one half-way.
 */
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

/*
 * How long ep_listen() waits for the directory lock.  Anybody who may read
 * the directory may flock() it; a blocking wait would let such a user stall
 * our server forever.  After this, ep_listen() goes on without the lock and
 * merely refuses to replace a stale file.
 */
#define EP_LOCK_WAIT_MS 1000

int ep_parse(const char *name, struct ep_addr *out)
{
	const size_t cap = sizeof(out->sun.sun_path);
	size_t len;

	if (!name || !out || name[0] == '\0')
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sun.sun_family = AF_UNIX;

	if (name[0] == '@') {
		/* Abstract: sun_path[0] is NUL and the name is the next len
		 * bytes, no terminator (the kernel counts every byte of
		 * addrlen, so "x" and "x\0" would be different names). */
		len = strnlen(name + 1, cap);
		if (len == 0)
			return -EINVAL;
		if (len > cap - 1)
			return -ENAMETOOLONG;
		memcpy(out->sun.sun_path + 1, name + 1, len);
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				       1 + len);
		out->abstract = true;
		return 0;
	}

	/* A path keeps its NUL inside sun_path (108 bytes would be accepted
	 * by Linux without one, but no other tool could print it). */
	len = strnlen(name, cap);
	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(out->sun.sun_path, name, len + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	out->abstract = false;
	return 0;
}

/* Open the directory that holds @path (for flock).  -errno on failure. */
static int ep_open_parent(const char *path, int *out_fd)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		size_t n = (size_t)(slash - path);

		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*out_fd = fd;
	return 0;
}

/* flock(LOCK_EX) with a bounded wait; see EP_LOCK_WAIT_MS. */
static int ep_lock_dir(int dfd)
{
	uint64_t deadline = os_deadline(EP_LOCK_WAIT_MS);
	struct timespec delay = { .tv_sec = 0, .tv_nsec = 1000000 };

	for (;;) {
		if (flock(dfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (os_now_ns() >= deadline)
			return -EWOULDBLOCK;
		/* Only reached under contention, which lasts as long as
		 * another server's bind..listen: a few microseconds. */
		nanosleep(&delay, NULL);
		if (delay.tv_nsec < 64000000)
			delay.tv_nsec *= 2;
	}
}

enum ep_probe_result {
	EP_GONE,   /* nothing at the path any more: bind again */
	EP_STALE,  /* a socket file nobody listens on: unlink, bind again */
	EP_BUSY,   /* live, not a socket, or unknown: leave it alone */
};

/* Find out what occupies @a's path.  Only EP_STALE allows an unlink. */
static enum ep_probe_result ep_probe(const struct ep_addr *a)
{
	struct stat st;
	int fd, r, err;

	if (lstat(a->sun.sun_path, &st) < 0)
		return errno == ENOENT ? EP_GONE : EP_BUSY;
	/* A regular file, a directory, a symlink (even to a stale socket):
	 * not ours to remove. */
	if (!S_ISSOCK(st.st_mode))
		return EP_BUSY;

	/* Non-blocking: a live server with a full backlog says EAGAIN rather
	 * than making us wait.  A live server does see this connection and
	 * its immediate close (an accept that yields an EOF). */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return EP_BUSY;
	r = connect(fd, (const struct sockaddr *)&a->sun, a->len);
	err = r < 0 ? errno : 0;
	os_close(fd);
	if (r == 0)
		return EP_BUSY;
	/* ECONNREFUSED: no socket is bound to that inode any more, or one is
	 * bound but not listening; the directory lock rules out the second
	 * case for evshm servers.  EPROTOTYPE means someone listens with
	 * another socket type: live.  EACCES and the rest: cannot tell. */
	if (err == ECONNREFUSED)
		return EP_STALE;
	if (err == ENOENT)
		return EP_GONE;
	return EP_BUSY;
}

int ep_listen(struct ep_listener *l, const char *name, unsigned mode,
	      int backlog)
{
	const char *path;
	struct stat st;
	bool locked = false;
	int fd, dfd = -1, tries, res;

	if (!l)
		return -EINVAL;
	l->fd = -1;
	l->dev = 0;
	l->ino = 0;
	if (mode & ~07777u)
		return -EINVAL;
	res = ep_parse(name, &l->addr);
	if (res < 0)
		return res;
	if (backlog <= 0)
		backlog = SOMAXCONN;

	/* Non-blocking: ep_accept() waits in poll(), and the fd is also
	 * what an application polls for "a client is waiting". */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;

	if (l->addr.abstract) {
		/* Abstract names vanish with their socket: nothing can be
		 * stale, and there is no file to chmod. */
		if (bind(fd, (const struct sockaddr *)&l->addr.sun,
			 l->addr.len) < 0 ||
		    listen(fd, backlog) < 0) {
			res = -errno;
			goto out_close_fd;
		}
		l->fd = fd;
		return 0;
	}

	path = l->addr.sun.sun_path;
	res = ep_open_parent(path, &dfd);
	/* A directory we may write and search but not read cannot be
	 * flock()ed: go on unlocked (no stale replacement, see below). */
	if (res < 0 && res != -EACCES)
		goto out_close_fd;
	if (dfd >= 0)
		locked = ep_lock_dir(dfd) == 0;

	for (tries = 0;; tries++) {
		enum ep_probe_result p;

		if (bind(fd, (const struct sockaddr *)&l->addr.sun,
			 l->addr.len) == 0)
			break;
		res = -errno;
		/* Without the lock we cannot know that the file is not a
		 * peer's half-way through bind..listen: never unlink. */
		if (res != -EADDRINUSE || !locked || tries == 2)
			goto out_close_dir;
		p = ep_probe(&l->addr);
		if (p == EP_BUSY) {
			res = -EADDRINUSE;
			goto out_close_dir;
		}
		if (p == EP_STALE && unlink(path) < 0 && errno != ENOENT) {
			res = -errno;
			goto out_close_dir;
		}
	}

	/* The file is ours now: a failure from here on removes it.
	 * No client can connect before listen(), so a chmod() here leaves no
	 * window in which the umask's permissions are in force.  (fchmod()
	 * does not reach the file of a socket; a temporary umask would be
	 * process-wide and race with other threads.) */
	if (mode && chmod(path, (mode_t)mode) < 0) {
		res = -errno;
		goto out_unlink;
	}
	/* Remember which file we made, so that close removes only that. */
	if (lstat(path, &st) < 0) {
		res = -errno;
		goto out_unlink;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	if (listen(fd, backlog) < 0) {
		res = -errno;
		goto out_unlink;
	}
	os_close(dfd); /* drops the lock */
	l->fd = fd;
	return 0;

out_unlink:
	unlink(path);
	l->dev = 0;
	l->ino = 0;
out_close_dir:
	os_close(dfd);
out_close_fd:
	os_close(fd);
	return res;
}

void ep_listener_close(struct ep_listener *l)
{
	struct stat st;
	int dfd = -1;

	if (!l || l->fd < 0)
		return;
	if (!l->addr.abstract && (l->dev || l->ino)) {
		const char *path = l->addr.sun.sun_path;

		/* Under the lock, so a server replacing the file at this
		 * moment cannot lose its fresh file to our unlink.  Best
		 * effort: without the lock the identity check still holds. */
		if (ep_open_parent(path, &dfd) == 0)
			(void)ep_lock_dir(dfd);
		/* The identity is sound while l->fd is open: a bound socket
		 * holds a reference to its file's inode, so the number cannot
		 * have been reused by a file made since.  Hence unlink first,
		 * close after. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == l->dev && st.st_ino == l->ino)
			unlink(path);
		os_close(dfd);
	}
	os_close(l->fd);
	l->fd = -1;
}

int ep_accept(const struct ep_listener *l, int timeout_ms, int *out_fd)
{
	uint64_t deadline = os_deadline(timeout_ms);
	int fd, r;

	if (!l || l->fd < 0 || !out_fd)
		return -EINVAL;
	for (;;) {
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			*out_fd = fd;
			return 0;
		}
		/* ECONNABORTED: that client left before we got to it. */
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = os_wait_fd(l->fd, POLLIN, deadline, timeout_ms);
		if (r < 0)
			return r;
	}
}

int ep_connect(const char *name, int *out_fd)
{
	struct ep_addr a;
	int fd, res;

	if (!out_fd)
		return -EINVAL;
	res = ep_parse(name, &a);
	if (res < 0)
		return res;
	/* Non-blocking: a full backlog is -EAGAIN at once instead of a wait
	 * with no deadline.  AF_UNIX connects complete synchronously (no
	 * EINPROGRESS). */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a.sun, a.len) < 0) {
		res = -errno;
		goto out_close_fd;
	}
	*out_fd = fd;
	return 0;

out_close_fd:
	os_close(fd);
	return res;
}

int ep_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (len != sizeof(uc))
		return -EPROTO;
	if (pid)
		*pid = uc.pid;
	if (uid)
		*uid = uc.uid;
	if (gid)
		*gid = uc.gid;
	return 0;
}
