/* SPDX-License-Identifier: MIT */
/*
 * A server's limits and access control, against clients that are separate
 * processes (peer_server): max_clients (-EUSERS), max_ring_size (-EFBIG),
 * the default same-uid policy, an authorize callback (a uid allow-list, a
 * callback's own error), and a client refusing its server.  Each refusal
 * must reach both sides with the documented error and leave nothing open
 * on the server.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evshm.h"
#include "util.h"

#define PEER TU_PEER("peer_server")

/* Start "peer_server MODE NAME ARGS..." (up to 4 extra arguments). */
static pid_t peer(const char *mode, const char *name, const char *a1,
		  const char *a2, const char *a3, const char *a4)
{
	char *argv[] = { "peer_server", (char *)mode, (char *)name, (char *)a1,
			 (char *)a2, (char *)a3, (char *)a4, NULL };
	pid_t pid;
	tu_assert_res(tu_spawn(&pid, PEER, argv), 0);
	return pid;
}

static void peer_done(pid_t pid)
{
	int status;
	tu_assert_res(tu_wait(pid, 30000, &status), 0);
	assert_int_equal(tu_exit_code(status), 0);
}

/* An admitted peer echoes: prove the channel works. */
static void ping(struct evshm_chan *c)
{
	char b[8];
	tu_assert_res(evshm_send(c, "ping", 4, 5000), 0);
	tu_assert_res(evshm_recv(c, b, sizeof(b), 5000), 4);
	assert_memory_equal(b, "ping", 4);
}

/* Tell an echoing peer to close, and see it go. */
static void bye(struct evshm_chan *c, pid_t pid)
{
	char b[8];
	tu_assert_res(evshm_send(c, "bye", 3, 5000), 0);
	tu_assert_res(evshm_recv(c, b, sizeof(b), 10000), -EPIPE);
	peer_done(pid);
}

/* --- max_clients ------------------------------------------------------------ */

static void test_max_clients(void **state)
{
	(void)state;
	struct evshm_opts o = { .ring_size = 4096, .max_clients = 3 };
	struct evshm_listener *l;
	struct evshm_chan *c[4];
	pid_t pid[4];
	char name[108];
	tu_unique_name(name, sizeof(name), "maxcl", true);
	int fds_start = tu_count_fds();
	tu_assert_res(evshm_listen(&l, name, &o), 0);
	int fds0 = tu_count_fds();

	for (int i = 0; i < 3; i++) {
		pid[i] = peer("connect", name, "--ring=4096", NULL, NULL, NULL);
		tu_assert_res(evshm_accept(l, &c[i], 10000), 0);
		ping(c[i]);
	}
	int fds3 = tu_count_fds();
	assert_true(fds3 > fds0);

	/* The fourth is refused, both sides say -EUSERS, and again and
	 * again: refused clients take no slot and leave nothing open.  (Many
	 * tries: the server refuses before reading the client's hello, and
	 * often before the client has sent it.) */
	pid_t p = peer("connect", name, "--expect=EUSERS", "--tries=50", NULL, NULL);
	for (int t = 0; t < 50; t++)
		tu_assert_res(evshm_accept(l, &c[3], 10000), -EUSERS);
	peer_done(p);
	assert_int_equal(tu_count_fds(), fds3);

	/* A client leaves.  Its slot is free once the server has closed
	 * its side of the channel, not before. */
	bye(c[0], pid[0]);
	p = peer("connect", name, "--expect=EUSERS", NULL, NULL, NULL);
	tu_assert_res(evshm_accept(l, &c[3], 10000), -EUSERS);
	peer_done(p);
	evshm_close(c[0]);
	pid[3] = peer("connect", name, "--ring=4096", NULL, NULL, NULL);
	tu_assert_res(evshm_accept(l, &c[3], 10000), 0);
	ping(c[3]);
	ping(c[1]);

	/* Channels outlive their listener (they share its client count). */
	evshm_listener_close(l);
	for (int i = 1; i < 4; i++) {
		ping(c[i]);
		bye(c[i], pid[i]);
		evshm_close(c[i]);
	}
	assert_int_equal(tu_count_fds(), fds_start); /* the listener's too */
}

/* --- max_ring_size ---------------------------------------------------------- */

static void test_max_ring_size(void **state)
{
	(void)state;
	struct evshm_opts o = { .ring_size = 4096, .max_ring_size = 1u << 16 };
	struct evshm_listener *l;
	struct evshm_chan *c;
	char name[108];
	tu_unique_name(name, sizeof(name), "maxring", false);
	tu_assert_res(evshm_listen(&l, name, &o), 0);
	int fds0 = tu_count_fds();

	/* Its own ring too large, or the one it asks us to write. */
	pid_t p = peer("connect", name, "--ring=131072", "--expect=EFBIG", NULL, NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), -EFBIG);
	peer_done(p);
	p = peer("connect", name, "--ring=4096", "--peer-ring=131072",
		 "--expect=EFBIG", NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), -EFBIG);
	peer_done(p);
	assert_int_equal(tu_count_fds(), fds0);

	/* At the limit, both ways: admitted, and the sizes are the ones asked. */
	p = peer("connect", name, "--ring=65536", "--peer-ring=65536", NULL, NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), 0);
	assert_int_equal(evshm_max_msg(c), EVSHM_MAX_MSG(65536));
	ping(c);
	bye(c, p);
	evshm_close(c);
	assert_int_equal(tu_count_fds(), fds0);
	evshm_listener_close(l);
}

/* --- access control ---------------------------------------------------------- */

/* A uid allow-list on top of the authorize callback. */
struct allow {
	uid_t uids[4];
	unsigned n;
	unsigned calls;
	pid_t pid; /* last caller seen */
	uid_t uid;
	gid_t gid;
};

static int allow_uids(void *arg, pid_t pid, uid_t uid, gid_t gid)
{
	struct allow *a = arg;
	a->calls++;
	a->pid = pid;
	a->uid = uid;
	a->gid = gid;
	for (unsigned i = 0; i < a->n; i++)
		if (a->uids[i] == uid)
			return 0;
	return -EACCES;
}

/* Records the caller like allow_uids, then refuses with its own error. */
static int say_eperm(void *arg, pid_t pid, uid_t uid, gid_t gid)
{
	(void)allow_uids(arg, pid, uid, gid);
	return -EPERM;
}

/* The tests below run a client as "nobody": root only (CI runs as root). */
static bool nobody(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("nobody");
	if (geteuid() != 0 || !pw) {
		print_message("needs root and a user 'nobody' to run a client of "
			      "another uid: skipped\n");
		return false;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return true;
}

static void test_access_default_same_uid_only(void **state)
{
	(void)state;
	uid_t uid;
	gid_t gid;
	if (!nobody(&uid, &gid))
		skip();
	struct evshm_listener *l;
	struct evshm_chan *c;
	char name[108];
	/* Abstract: no file permission stands between nobody and us, only
	 * the policy. */
	tu_unique_name(name, sizeof(name), "acl", true);
	tu_assert_res(evshm_listen(&l, name, NULL), 0);
	int fds0 = tu_count_fds();

	pid_t p = peer("connect", name, "--user=nobody", "--expect=EACCES",
		       "--tries=20", NULL);
	for (int t = 0; t < 20; t++)
		tu_assert_res(evshm_accept(l, &c, 10000), -EACCES);
	peer_done(p);
	assert_int_equal(tu_count_fds(), fds0);

	/* Our own uid is still welcome. */
	p = peer("connect", name, NULL, NULL, NULL, NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), 0);
	ping(c);
	bye(c, p);
	evshm_close(c);
	assert_int_equal(tu_count_fds(), fds0);
	evshm_listener_close(l);
}

static void test_access_allow_list(void **state)
{
	(void)state;
	uid_t uid;
	gid_t gid;
	if (!nobody(&uid, &gid))
		skip();
	struct allow a = { .uids = { uid }, .n = 1 };
	struct evshm_opts o = { .authorize = allow_uids, .authorize_arg = &a };
	struct evshm_listener *l;
	struct evshm_chan *c;
	char name[108];
	tu_unique_name(name, sizeof(name), "allow", true);
	tu_assert_res(evshm_listen(&l, name, &o), 0);
	int fds0 = tu_count_fds();

	/* nobody is on the list: admitted, and it works. */
	pid_t p = peer("connect", name, "--user=nobody", NULL, NULL, NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.pid, p);
	assert_int_equal(a.uid, uid);
	assert_int_equal(a.gid, gid);
	pid_t cpid;
	uid_t cuid;
	gid_t cgid;
	tu_assert_res(evshm_peer_cred(c, &cpid, &cuid, &cgid), 0);
	assert_int_equal(cpid, p);
	assert_int_equal(cuid, uid);
	assert_int_equal(cgid, gid);
	ping(c);
	bye(c, p);
	evshm_close(c);

	/* We (root) are not on it: the callback replaces the default. */
	p = peer("connect", name, "--expect=EACCES", NULL, NULL, NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), -EACCES);
	peer_done(p);
	assert_int_equal(a.uid, geteuid());
	assert_int_equal(tu_count_fds(), fds0);
	evshm_listener_close(l);
}

/* The callback's own error: this side gets it, the client -EACCES.  Needs
 * no second uid. */
static void test_access_callback_error(void **state)
{
	(void)state;
	struct allow a = { .n = 0 };
	struct evshm_opts o = { .authorize = say_eperm, .authorize_arg = &a };
	struct evshm_listener *l;
	struct evshm_chan *c;
	char name[108];
	tu_unique_name(name, sizeof(name), "eperm", false);
	tu_assert_res(evshm_listen(&l, name, &o), 0);
	int fds0 = tu_count_fds();

	pid_t p = peer("connect", name, "--expect=EACCES", "--tries=20", NULL, NULL);
	for (int t = 0; t < 20; t++)
		tu_assert_res(evshm_accept(l, &c, 10000), -EPERM);
	peer_done(p);
	assert_int_equal(a.calls, 20);
	assert_int_equal(a.pid, p);
	assert_int_equal(a.uid, geteuid());
	assert_int_equal(tu_count_fds(), fds0);
	evshm_listener_close(l);
}

/* A client's authorize refuses the server: its connect returns the
 * callback's error before it sends anything; the server sees the client
 * hang up during the handshake. */
static void test_access_client_refuses_server(void **state)
{
	(void)state;
	struct evshm_listener *l;
	struct evshm_chan *c;
	char name[108];
	tu_unique_name(name, sizeof(name), "cliacl", true);
	tu_assert_res(evshm_listen(&l, name, NULL), 0);
	int fds0 = tu_count_fds();

	pid_t p = peer("connect", name, "--refuse-server", "--expect=EPERM",
		       NULL, NULL);
	tu_assert_res(evshm_accept(l, &c, 10000), -ECONNRESET);
	peer_done(p);
	assert_int_equal(tu_count_fds(), fds0);
	evshm_listener_close(l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_clients),
		cmocka_unit_test(test_max_ring_size),
		cmocka_unit_test(test_access_default_same_uid_only),
		cmocka_unit_test(test_access_allow_list),
		cmocka_unit_test(test_access_callback_error),
		cmocka_unit_test(test_access_client_refuses_server),
	};
	return TU_RUN(tests, argc, argv);
}
