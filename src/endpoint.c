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
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

/* Linux 6.16: a receiver may refuse SCM_RIGHTS (the sender gets EPERM). */
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

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

/* Open the directory that holds @path with @flags (O_RDONLY for flock,
 * O_PATH for the *at() calls).  -errno on failure. */
static int ep_open_parent(const char *path, int flags, int *out_fd)
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
	fd = open(dir, flags | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*out_fd = fd;
	return 0;
}

/* The last component of @path. */
static const char *ep_base(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
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

/*
 * Make a fresh private directory in @dfd and open it: *@tfd, named @tmp.
 * Between mkdirat() and openat() another user who may write @dfd can rename
 * ours away and put a directory of its own under the name (and then swap
 * the socket in it for a symlink before our fchmodat).  So what we opened
 * must be a directory of our euid that nobody else may enter; if it is
 * not, we try again under a new name, a few times (-EACCES after that).
 */
static int ep_private_dir(int dfd, char *tmp, size_t n, int *tfd)
{
	struct stat st;
	uint32_t rnd;
	int fd;

	for (int i = 0; i < 16; i++) {
		os_random(&rnd, sizeof(rnd));
		snprintf(tmp, n, ".evshm-%08x", rnd);
		if (mkdirat(dfd, tmp, 0700) < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		fd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					      O_CLOEXEC);
		if (fd < 0) {
			int err = errno;

			if (err == ENOENT || err == ENOTDIR || err == ELOOP)
				continue; /* renamed away: not ours to remove */
			/* Still ours (EMFILE, ENOMEM): leave nothing behind. */
			unlinkat(dfd, tmp, AT_REMOVEDIR);
			return -err;
		}
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_uid == geteuid() && !(st.st_mode & 077)) {
			*tfd = fd;
			return 0;
		}
		/* Someone else's, in our directory's place: leave it. */
		os_close(fd);
	}
	return -EACCES;
}

/*
 * Give the socket file at @base (in directory @dfd) its mode without ever
 * resolving a name another user could swap.  bind() creates the file with
 * the umask's bits, and chmod(path) afterwards follows whatever sits at
 * the path by then: in a directory another user may write, a symlink
 * swapped in between made 0.1 chmod a file of the attacker's choosing.
 * So the socket is bound inside a fresh private directory (0700, ours, and
 * reached only through a descriptor, via /proc/self/fd/N), given its mode
 * there, where nobody else can reach it, and then renamed into place with
 * RENAME_NOREPLACE (or link()+unlink(), which never replaces either): the
 * inode that moves is the one we bound and chmodded.  A temporary
 * directory that an attacker renamed away is left behind empty.
 */
static int ep_bind_mode(int sock, int dfd, const char *base, unsigned mode,
			struct stat *st)
{
	char tmp[32], path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int tfd = -1, res;

	res = ep_private_dir(dfd, tmp, sizeof(tmp), &tfd);
	if (res < 0)
		return res;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/s", tfd);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (bind(sock, (const struct sockaddr *)&sun,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1)) < 0 ||
	    fchmodat(tfd, "s", (mode_t)mode, 0) < 0 ||
	    fstatat(tfd, "s", st, AT_SYMLINK_NOFOLLOW) < 0) {
		res = -errno;
		goto out_unlink;
	}
	if (renameat2(tfd, "s", dfd, base, RENAME_NOREPLACE) < 0) {
		res = -errno;
		if (res != -EINVAL)
			goto out_unlink;
		/* A file system without RENAME_NOREPLACE: link() never
		 * replaces an existing name either. */
		if (linkat(tfd, "s", dfd, base, 0) < 0) {
			res = -errno;
			goto out_unlink;
		}
		unlinkat(tfd, "s", 0);
	}
	res = 0;
	goto out_rmdir;

out_unlink:
	unlinkat(tfd, "s", 0);
out_rmdir:
	unlinkat(dfd, tmp, AT_REMOVEDIR);
	os_close(tfd);
	return res == -EEXIST ? -EADDRINUSE : res;
}

int ep_listen(struct ep_listener *l, const char *name, unsigned mode,
	      int backlog)
{
	const char *path;
	struct stat st;
	bool locked = false;
	int fd, dfd = -1, pfd = -1, tries, res;

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
	res = ep_open_parent(path, O_PATH, &pfd);
	if (res < 0)
		goto out_close_fd;
	res = ep_open_parent(path, O_RDONLY, &dfd);
	/* A directory we may write and search but not read cannot be
	 * flock()ed: go on unlocked (no stale replacement, see below). */
	if (res < 0 && res != -EACCES)
		goto out_close_dir;
	if (dfd >= 0)
		locked = ep_lock_dir(dfd) == 0;

	for (tries = 0;; tries++) {
		enum ep_probe_result p;

		if (mode)
			res = ep_bind_mode(fd, pfd, ep_base(path), mode, &st);
		else if (bind(fd, (const struct sockaddr *)&l->addr.sun,
			      l->addr.len) == 0)
			res = lstat(path, &st) < 0 ? -errno : 0;
		else
			res = -errno;
		if (res == 0)
			break;
		/* Without the lock we cannot know that the file is not a
		 * peer's half-way through bind..listen: never unlink. */
		if (res != -EADDRINUSE || !locked || tries == 2)
			goto out_close_dir;
		p = ep_probe(&l->addr);
		if (p == EP_BUSY) {
			res = -EADDRINUSE;
			goto out_close_dir;
		}
		if (p == EP_STALE && unlinkat(pfd, ep_base(path), 0) < 0 &&
		    errno != ENOENT) {
			res = -errno;
			goto out_close_dir;
		}
	}

	/* The file is ours now: a failure from here on removes it.  Its
	 * identity (taken where nobody could swap it) lets close remove
	 * only that file. */
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	if (listen(fd, backlog) < 0) {
		res = -errno;
		goto out_unlink;
	}
	os_close(dfd); /* drops the lock */
	os_close(pfd);
	l->fd = fd;
	return 0;

out_unlink:
	unlinkat(pfd, ep_base(path), 0);
	l->dev = 0;
	l->ino = 0;
out_close_dir:
	os_close(dfd);
	os_close(pfd);
out_close_fd:
	os_close(fd);
	return res;
}

int ep_listener_release(struct ep_listener *l)
{
	int fd;
	struct stat st;
	int dfd = -1;

	if (!l || l->fd < 0)
		return -1;
	if (!l->addr.abstract && (l->dev || l->ino)) {
		const char *path = l->addr.sun.sun_path;

		/* Under the lock, so a server replacing the file at this
		 * moment cannot lose its fresh file to our unlink.  Best
		 * effort: without the lock the identity check still holds. */
		if (ep_open_parent(path, O_RDONLY, &dfd) == 0)
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
	fd = l->fd;
	l->fd = -1;
	return fd;
}

void ep_listener_close(struct ep_listener *l)
{
	os_close(ep_listener_release(l));
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

static int ep_connect_(const char *name, int timeout_ms, int *out_fd,
		       bool *rights_off)
{
	uint64_t deadline = os_deadline(timeout_ms);
	struct ep_addr a;
	int fd, res;

	if (!out_fd)
		return -EINVAL;
	res = ep_parse(name, &a);
	if (res < 0)
		return res;
	/* A full backlog: a non-blocking connect says EAGAIN at once, a
	 * blocking one sleeps until the server accepts someone, bounded by
	 * SO_SNDTIMEO.  So connect blocking, with the time we have, and make
	 * the socket non-blocking afterwards (every later wait is a poll()
	 * against a deadline).  AF_UNIX connects otherwise complete at once. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
			     (timeout_ms == 0 ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	if (rights_off)
		*rights_off = os_passrights(fd, false) == 0;
	for (;;) {
		if (timeout_ms != 0) {
			int ms = os_remaining_ms(deadline);
			struct timeval tv = { .tv_sec = ms / 1000,
					      .tv_usec = (ms % 1000) * 1000 };

			if (ms == 0) {
				res = -ETIMEDOUT;
				goto out_close_fd;
			}
			/* 0 would mean forever, which is what -1 asks. */
			if (ms < 0)
				tv = (struct timeval){ 0 };
			if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				       sizeof(tv)) < 0) {
				res = -errno;
				goto out_close_fd;
			}
		}
		if (connect(fd, (const struct sockaddr *)&a.sun, a.len) == 0)
			break;
		res = -errno;
		if (res == -EINTR)
			continue;
		if (res == -EAGAIN && timeout_ms != 0)
			res = os_now_ns() >= deadline ? -ETIMEDOUT : -EINTR;
		if (res != -EINTR)
			goto out_close_fd;
	}
	if (timeout_ms != 0 && fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK) < 0) {
		res = -errno;
		goto out_close_fd;
	}
	*out_fd = fd;
	return 0;

out_close_fd:
	os_close(fd);
	return res;
}

int ep_connect(const char *name, int timeout_ms, int *out_fd)
{
	return ep_connect_(name, timeout_ms, out_fd, NULL);
}

int ep_connect_norights(const char *name, int timeout_ms, int *out_fd,
			bool *rights_off)
{
	return ep_connect_(name, timeout_ms, out_fd, rights_off);
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
