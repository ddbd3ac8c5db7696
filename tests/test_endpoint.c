/* SPDX-License-Identifier: MIT */
/*
 * test_endpoint: listen / accept / connect on paths and abstract names:
 * stale socket files are replaced, live ones and non-sockets never are, a
 * listener removes only its own file, the mode option reaches the file,
 * bad input is an error (never a crash), filesystem permissions come back
 * as -EACCES, and SO_PEERCRED names the right process on both sides.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"
#include "fdpass.h"
#include "os.h"
#include "socket_peers.h"
#include "util.h"

/* A socket bound at @path and closed without unlink: what a crashed
 * server leaves behind. */
static void make_stale(const char *path, int type, bool listening)
{
	struct ep_addr a;
	int fd;

	tu_assert_res(ep_parse(path, &a), 0);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a.sun, a.len), 0);
	if (listening)
		assert_int_equal(listen(fd, 1), 0);
	os_close(fd);
}

/* A live non-evshm listener of @type at @path (caller closes). */
static int make_live(const char *path, int type)
{
	struct ep_addr a;
	int fd;

	tu_assert_res(ep_parse(path, &a), 0);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a.sun, a.len), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0;
	return st.st_ino;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* A connection from us to @l works end to end. */
static void assert_serves(struct ep_listener *l, const char *name)
{
	unsigned nfds;
	char buf[8];
	int c, s;

	tu_assert_res(ep_connect(name, 0, &c), 0);
	tu_assert_res(ep_accept(l, 1000, &s), 0);
	tu_assert_res(fdp_send(c, "ping", 4, NULL, 0, 1000), 0);
	tu_assert_res(fdp_recv(s, buf, sizeof(buf), NULL, 0, &nfds, 1000), 4);
	assert_memory_equal(buf, "ping", 4);
	os_close(c);
	os_close(s);
}

static void test_parse(void **state)
{
	const size_t base = offsetof(struct sockaddr_un, sun_path);
	char name[130];
	struct ep_addr a;

	(void)state;
	tu_assert_res(ep_parse(NULL, &a), -EINVAL);
	tu_assert_res(ep_parse("x", NULL), -EINVAL);
	tu_assert_res(ep_parse("", &a), -EINVAL);
	tu_assert_res(ep_parse("@", &a), -EINVAL);

	tu_assert_res(ep_parse("@ab", &a), 0);
	assert_true(a.abstract);
	assert_int_equal(a.len, base + 3); /* NUL, 'a', 'b': no terminator */
	assert_int_equal(a.sun.sun_path[0], '\0');
	assert_memory_equal(a.sun.sun_path + 1, "ab", 2);

	tu_assert_res(ep_parse("/ab", &a), 0);
	assert_false(a.abstract);
	assert_int_equal(a.len, base + 4); /* with the NUL */
	assert_string_equal(a.sun.sun_path, "/ab");

	/* sun_path is 108 bytes: 107 + NUL for a path, NUL + 107 for an
	 * abstract name. */
	memset(name, 'p', sizeof(name));
	name[107] = '\0';
	tu_assert_res(ep_parse(name, &a), 0);
	name[107] = 'p';
	name[108] = '\0';
	tu_assert_res(ep_parse(name, &a), -ENAMETOOLONG);
	name[129] = '\0';
	tu_assert_res(ep_parse(name, &a), -ENAMETOOLONG);
	name[0] = '@';
	name[108] = '\0';
	tu_assert_res(ep_parse(name, &a), 0);
	assert_int_equal(a.len, sizeof(struct sockaddr_un));
	name[108] = 'p';
	name[109] = '\0';
	tu_assert_res(ep_parse(name, &a), -ENAMETOOLONG);
}

static void test_bad_inputs(void **state)
{
	struct ep_listener l;
	char path[256], file[128], tl[130];
	int fd, before = tu_count_fds();

	(void)state;
	memset(tl, 'q', sizeof(tl));
	tl[0] = '/';
	tl[sizeof(tl) - 1] = '\0';

	tu_assert_res(ep_listen(NULL, "@x", 0, 0), -EINVAL);
	tu_assert_res(ep_listen(&l, NULL, 0, 0), -EINVAL);
	assert_int_equal(l.fd, -1);
	tu_assert_res(ep_listen(&l, "", 0, 0), -EINVAL);
	tu_assert_res(ep_listen(&l, "@", 0, 0), -EINVAL);
	tu_assert_res(ep_listen(&l, tl, 0, 0), -ENAMETOOLONG);
	tu_assert_res(ep_listen(&l, "@x", 010000, 0), -EINVAL);
	snprintf(path, sizeof(path), "%s/no/such/dir/sock", tu_tmpdir());
	tu_assert_res(ep_listen(&l, path, 0, 0), -ENOENT);
	assert_int_equal(l.fd, -1);
	/* A path component that is a file. */
	snprintf(file, sizeof(file), "%s/plainfile", tu_tmpdir());
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	os_close(fd);
	snprintf(path, sizeof(path), "%s/sock", file);
	tu_assert_res(ep_listen(&l, path, 0, 0), -ENOTDIR);

	tu_assert_res(ep_connect(NULL, 0, &fd), -EINVAL);
	tu_assert_res(ep_connect("", 0, &fd), -EINVAL);
	tu_assert_res(ep_connect("@", 0, &fd), -EINVAL);
	tu_assert_res(ep_connect("@x", 0, NULL), -EINVAL);
	tu_assert_res(ep_connect(tl, 0, &fd), -ENAMETOOLONG);
	tu_assert_res(ep_accept(NULL, 0, &fd), -EINVAL);
	l.fd = -1;
	tu_assert_res(ep_accept(&l, 0, &fd), -EINVAL);
	tu_assert_res(ep_peercred(-1, NULL, NULL, NULL), -EBADF);
	/* Closing nothing, or twice, is harmless. */
	ep_listener_close(NULL);
	ep_listener_close(&l);
	tu_assert_res(ep_listen(&l, "@evshm-bad-inputs-twice", 0, 0), 0);
	ep_listener_close(&l);
	ep_listener_close(&l);
	assert_int_equal(tu_count_fds(), before);
}

static void test_stale_replaced(void **state)
{
	static const struct {
		int type;
		bool listening;
	} cases[] = {
		{ SOCK_SEQPACKET, true },  /* a crashed evshm server */
		{ SOCK_SEQPACKET, false }, /* bound, crashed before listen */
		{ SOCK_STREAM, true },     /* someone else's, also dead */
	};
	struct ep_listener l;
	char path[108];
	size_t i;
	int fd;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tu_unique_name(path, sizeof(path), "stale", false);
		make_stale(path, cases[i].type, cases[i].listening);
		assert_true(ino_of(path) != 0);
		tu_assert_res(ep_connect(path, 0, &fd), -ECONNREFUSED);

		/* (The new file may reuse the old inode number: nothing
		 * holds the old one any more.) */
		tu_assert_res(ep_listen(&l, path, 0, 0), 0);
		assert_true(l.ino == ino_of(path));
		assert_serves(&l, path);
		ep_listener_close(&l);
		assert_false(exists(path));
	}
}

static void test_live_not_stolen(void **state)
{
	struct ep_listener a, b;
	char path[108], buf[8];
	unsigned nfds;
	ino_t ino;
	int c, s, live;

	(void)state;
	tu_unique_name(path, sizeof(path), "live", false);
	tu_assert_res(ep_listen(&a, path, 0, 0), 0);
	ino = ino_of(path);
	tu_assert_res(ep_listen(&b, path, 0, 0), -EADDRINUSE);
	assert_int_equal(b.fd, -1);
	assert_true(ino_of(path) == ino);

	/* The refused listener's liveness probe is a connection that the
	 * live server sees first, closed at once: an accept that reads EOF. */
	tu_assert_res(ep_connect(path, 0, &c), 0);
	tu_assert_res(fdp_send(c, "real", 4, NULL, 0, 1000), 0);
	tu_assert_res(ep_accept(&a, 1000, &s), 0);
	tu_assert_res(fdp_recv(s, buf, sizeof(buf), NULL, 0, &nfds, 1000),
		      -EPIPE);
	os_close(s);
	tu_assert_res(ep_accept(&a, 1000, &s), 0);
	tu_assert_res(fdp_recv(s, buf, sizeof(buf), NULL, 0, &nfds, 1000), 4);
	assert_memory_equal(buf, "real", 4);
	os_close(s);
	os_close(c);
	assert_serves(&a, path);
	ep_listener_close(&a);
	assert_false(exists(path));

	/* A live listener of another socket type is live too (EPROTOTYPE). */
	tu_unique_name(path, sizeof(path), "live-stream", false);
	live = make_live(path, SOCK_STREAM);
	ino = ino_of(path);
	tu_assert_res(ep_listen(&a, path, 0, 0), -EADDRINUSE);
	assert_true(ino_of(path) == ino);
	tu_assert_res(ep_connect(path, 0, &c), -EPROTOTYPE);
	os_close(live);

	/* Abstract names: in use while the socket lives, free after. */
	tu_unique_name(path, sizeof(path), "live", true);
	tu_assert_res(ep_listen(&a, path, 0, 0), 0);
	tu_assert_res(ep_listen(&b, path, 0, 0), -EADDRINUSE);
	assert_serves(&a, path);
	ep_listener_close(&a);
	tu_assert_res(ep_listen(&b, path, 0, 0), 0);
	ep_listener_close(&b);
}

static void test_not_a_socket(void **state)
{
	struct ep_listener l;
	char path[108], target[108], buf[8];
	int fd;

	(void)state;
	/* A regular file: refused, and its content is still there. */
	tu_unique_name(path, sizeof(path), "file", false);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	os_close(fd);
	tu_assert_res(ep_listen(&l, path, 0, 0), -EADDRINUSE);
	tu_assert_res(ep_connect(path, 0, &fd), -ECONNREFUSED);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "keep", 4);
	os_close(fd);

	/* A directory. */
	tu_unique_name(path, sizeof(path), "dir", false);
	assert_int_equal(mkdir(path, 0700), 0);
	tu_assert_res(ep_listen(&l, path, 0, 0), -EADDRINUSE);
	assert_true(exists(path));

	/* A symlink, even to a stale socket: neither is touched. */
	tu_unique_name(target, sizeof(target), "target", false);
	make_stale(target, SOCK_SEQPACKET, true);
	tu_unique_name(path, sizeof(path), "link", false);
	assert_int_equal(symlink(target, path), 0);
	tu_assert_res(ep_listen(&l, path, 0, 0), -EADDRINUSE);
	assert_true(exists(path) && exists(target));
}

static void test_close_removes_own_file(void **state)
{
	struct ep_listener l;
	char path[108];
	int other, fd;

	(void)state;
	tu_unique_name(path, sizeof(path), "own", false);
	tu_assert_res(ep_listen(&l, path, 0, 0), 0);
	assert_true(exists(path));
	ep_listener_close(&l);
	assert_false(exists(path));
	assert_int_equal(l.fd, -1);

	/* Someone removed our file and bound their own there: theirs stays. */
	tu_assert_res(ep_listen(&l, path, 0, 0), 0);
	assert_int_equal(unlink(path), 0);
	other = make_live(path, SOCK_SEQPACKET);
	ep_listener_close(&l);
	assert_true(exists(path));
	tu_assert_res(ep_connect(path, 0, &fd), 0);
	os_close(fd);
	os_close(other);
	assert_int_equal(unlink(path), 0);

	/* Replaced by a regular file: stays too. */
	tu_assert_res(ep_listen(&l, path, 0, 0), 0);
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	os_close(fd);
	ep_listener_close(&l);
	assert_true(exists(path));
}

/* Someone holds the directory lock (anyone who can read a directory can
 * flock() it): ep_listen() neither hangs nor replaces a stale file without
 * the lock, and a free path still works. */
static void test_lock_held(void **state)
{
	struct ep_listener l;
	char path[108];
	int dfd;

	(void)state;
	dfd = open(tu_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(flock(dfd, LOCK_EX), 0);

	tu_unique_name(path, sizeof(path), "locked-stale", false);
	make_stale(path, SOCK_SEQPACKET, true);
	tu_assert_res(ep_listen(&l, path, 0, 0), -EADDRINUSE);
	assert_true(exists(path));

	tu_unique_name(path, sizeof(path), "locked-free", false);
	tu_assert_res(ep_listen(&l, path, 0, 0), 0);
	assert_serves(&l, path);
	ep_listener_close(&l);
	assert_false(exists(path));

	os_close(dfd);
}

static void test_mode(void **state)
{
	static const unsigned modes[] = { 0600, 0660, 0666 };
	struct ep_listener l;
	char path[108];
	struct stat st;
	mode_t old;
	size_t i;

	(void)state;
	old = umask(022);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		tu_unique_name(path, sizeof(path), "mode", false);
		tu_assert_res(ep_listen(&l, path, modes[i], 0), 0);
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		/* 0666 is wider than the umask allows: chmod, not umask. */
		assert_int_equal(st.st_mode & 07777, modes[i]);
		ep_listener_close(&l);
	}
	/* 0: what bind() and the umask give. */
	tu_unique_name(path, sizeof(path), "mode", false);
	tu_assert_res(ep_listen(&l, path, 0, 0), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	ep_listener_close(&l);
	umask(old);
}

static void test_relative_path(void **state)
{
	struct ep_listener l;
	char cwd[4096];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tu_tmpdir()), 0);
	tu_assert_res(ep_listen(&l, "rel.sock", 0600, 0), 0);
	assert_true(exists("rel.sock"));
	assert_serves(&l, "rel.sock");
	ep_listener_close(&l);
	assert_false(exists("rel.sock"));
	assert_int_equal(chdir(cwd), 0);
}

static void test_connect_nobody(void **state)
{
	char path[108];
	int fd;

	(void)state;
	tu_unique_name(path, sizeof(path), "none", false);
	tu_assert_res(ep_connect(path, 0, &fd), -ENOENT);
	make_stale(path, SOCK_SEQPACKET, true);
	tu_assert_res(ep_connect(path, 0, &fd), -ECONNREFUSED);
	tu_unique_name(path, sizeof(path), "none", true);
	tu_assert_res(ep_connect(path, 0, &fd), -ECONNREFUSED);
}

static void test_accept_timeouts(void **state)
{
	struct ep_listener l;
	char name[108];
	int fd = -1;

	(void)state;
	tu_unique_name(name, sizeof(name), "acc", true);
	tu_assert_res(ep_listen(&l, name, 0, 1), 0);
	tu_assert_res(ep_accept(&l, 0, &fd), -EAGAIN);
	tu_assert_res(ep_accept(&l, 50, &fd), -ETIMEDOUT);
	assert_int_equal(fd, -1);
	ep_listener_close(&l);
}

static void test_peercred(void **state)
{
	char name[108];
	char *argv[] = { "peer_endpoint", "cred", name, NULL };
	struct ep_listener l;
	struct sp_cred c;
	unsigned nfds;
	pid_t pid, ppid;
	uid_t uid;
	gid_t gid;
	int sock, status;

	(void)state;
	tu_unique_name(name, sizeof(name), "cred", true);
	tu_assert_res(ep_listen(&l, name, 0, 0), 0);
	tu_assert_res(tu_spawn(&pid, TU_PEER("peer_endpoint"), argv), 0);
	tu_assert_res(ep_accept(&l, SP_TIMEOUT_MS, &sock), 0);
	/* Our side: the spawned process, with our uid/gid. */
	tu_assert_res(ep_peercred(sock, &ppid, &uid, &gid), 0);
	assert_int_equal(ppid, pid);
	assert_int_equal(uid, getuid());
	assert_int_equal(gid, getgid());
	/* Its side: us (SO_PEERCRED of a client names whoever listen()ed). */
	tu_assert_res(fdp_recv(sock, &c, sizeof(c), NULL, 0, &nfds,
			       SP_TIMEOUT_MS), sizeof(c));
	assert_int_equal(c.pid, pid);
	assert_int_equal(c.ppid, getpid());
	assert_int_equal(c.server_pid, getpid());
	assert_int_equal(c.server_uid, getuid());
	assert_int_equal(c.server_gid, getgid());
	os_close(sock);
	tu_assert_res(tu_wait(pid, SP_TIMEOUT_MS, &status), 0);
	assert_int_equal(tu_exit_code(status), 0);
	ep_listener_close(&l);
}

static void test_permissions(void **state)
{
	char dir[108], sub[160], rw[160], ro[160], live[160];
	char *argv[] = { "peer_endpoint", "perms", dir, NULL };
	struct ep_listener lrw, lro, llive;
	int status, code;
	pid_t pid;

	(void)state;
	/* The peer may run as nobody: let it through our private tmpdir
	 * (search only) into a world-writable "open" and a closed "closed". */
	assert_int_equal(chmod(tu_tmpdir(), 0711), 0);
	tu_unique_name(dir, sizeof(dir), "perms", false);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/open", dir);
	assert_int_equal(mkdir(sub, 0777), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	snprintf(sub, sizeof(sub), "%s/closed", dir);
	assert_int_equal(mkdir(sub, 0700), 0);

	snprintf(rw, sizeof(rw), "%s/open/rw", dir);
	snprintf(ro, sizeof(ro), "%s/open/ro", dir);
	snprintf(live, sizeof(live), "%s/closed/live", dir);
	tu_assert_res(ep_listen(&lrw, rw, 0666, 0), 0);
	tu_assert_res(ep_listen(&lro, ro, 0400, 0), 0);
	tu_assert_res(ep_listen(&llive, live, 0666, 0), 0);
	/* Only now close the directory: we needed in to listen there. */
	assert_int_equal(chmod(sub, 0), 0);

	tu_assert_res(tu_spawn(&pid, TU_PEER("peer_endpoint"), argv), 0);
	tu_assert_res(tu_wait(pid, SP_TIMEOUT_MS, &status), 0);
	code = tu_exit_code(status);

	ep_listener_close(&lrw);
	ep_listener_close(&lro);
	assert_int_equal(chmod(sub, 0700), 0);
	ep_listener_close(&llive);
	assert_false(exists(live));
	assert_int_equal(chmod(tu_tmpdir(), 0700), 0);
	if (code == TU_EXIT_SKIP) {
		print_message("cannot drop to an unprivileged user here\n");
		skip();
	}
	assert_int_equal(code, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_stale_replaced),
		cmocka_unit_test(test_live_not_stolen),
		cmocka_unit_test(test_not_a_socket),
		cmocka_unit_test(test_close_removes_own_file),
		cmocka_unit_test(test_lock_held),
		cmocka_unit_test(test_mode),
		cmocka_unit_test(test_relative_path),
		cmocka_unit_test(test_connect_nobody),
		cmocka_unit_test(test_accept_timeouts),
		cmocka_unit_test(test_peercred),
		cmocka_unit_test(test_permissions),
	};
	return TU_RUN(tests, argc, argv);
}
