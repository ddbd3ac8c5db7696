/* SPDX-License-Identifier: MIT */
/* util.c: see util.h. */
#include "util.h"
#include "evshm.h"

#include "os.h"

#include <dirent.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Room left in a 108-byte sun_path for "/<prefix>-<n>" after the dir. */
#define TU_TMPDIR_MAX 64

static char tu_dir[PATH_MAX];
static unsigned tu_counter;
/* pidfd_open() is ENOSYS here (valgrind 3.19 does not know it). */
static bool tu_no_pidfd;

/*
 * The peers this process has started (see "Peers never outlive their test"
 * in util.h).  0: a free slot.  Slots are written under tu_peers_lock and
 * read without it only by tu_on_abort(), hence the atomics.  A pid reaped
 * by plain waitpid() stays until tu_kill_peers() or a full table looks at
 * it: waitid(WNOWAIT) then says ECHILD, the pid is no child of ours, and
 * the slot is freed without a kill.  So a pid that has been reused by
 * another process is never signalled.
 */
#define TU_PEERS_MAX 1024
static pid_t tu_peers[TU_PEERS_MAX];
static char tu_peer_names[TU_PEERS_MAX][24];
static pthread_mutex_t tu_peers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t tu_peers_once = PTHREAD_ONCE_INIT;
/* Set in a peer started with TU_PARENT_ENV: it has PR_SET_PDEATHSIG. */
static bool tu_pdeath;

/* Set by tu_spawn_ex() in its peer's environment, to its own pid: "die
 * with me". */
#define TU_PARENT_ENV "EVSHM_TEST_PARENT"

/* 1: @pid is our child and has not ended (or is stopped); 0: it has ended
 * (a zombie: not reaped yet); -1: no child of ours (reaped already).
 * Async-signal-safe. */
static int tu_child_state(pid_t pid)
{
	siginfo_t si;

	si.si_pid = 0;
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return -1;
	return si.si_pid == 0 ? 1 : 0;
}

/* A sanitizer's report ends the process with _exit() (or abort()):
 * where one is linked in, it calls this first. */
extern void __sanitizer_set_death_callback(void (*cb)(void))
	__attribute__((weak));

/* Kill the peers that still run, now: no lock, no reaping, only
 * async-signal-safe calls. */
static void tu_kill_peers_now(void)
{
	int saved = errno;

	for (size_t i = 0; i < TU_PEERS_MAX; i++) {
		pid_t pid = __atomic_load_n(&tu_peers[i], __ATOMIC_RELAXED);

		if (pid > 0 && tu_child_state(pid) == 1)
			kill(pid, SIGKILL);
	}
	errno = saved;
}

/* abort() runs no atexit handler; the default action follows. */
static void tu_on_abort(int sig)
{
	(void)sig;
	tu_kill_peers_now();
}

static void tu_kill_peers_at_exit(void)
{
	tu_kill_peers();
}

static void tu_peers_init(void)
{
	struct sigaction sa, old;

	atexit(tu_kill_peers_at_exit);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(tu_kill_peers_now);
	/* Only where nobody else handles SIGABRT. */
	if (sigaction(SIGABRT, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
	    old.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = tu_on_abort;
		sa.sa_flags = SA_RESETHAND;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGABRT, &sa, NULL);
	}
}

/* Free the slots of pids that are no child of ours any more.  Locked. */
static void tu_peers_prune(void)
{
	for (size_t i = 0; i < TU_PEERS_MAX; i++)
		if (tu_peers[i] > 0 && tu_child_state(tu_peers[i]) < 0)
			__atomic_store_n(&tu_peers[i], 0, __ATOMIC_RELAXED);
}

static void tu_peer_add(pid_t pid, const char *exe)
{
	const char *base = strrchr(exe, '/');
	size_t i, slot = TU_PEERS_MAX;

	base = base ? base + 1 : exe;
	pthread_once(&tu_peers_once, tu_peers_init);
	pthread_mutex_lock(&tu_peers_lock);
	for (int round = 0; round < 2 && slot == TU_PEERS_MAX; round++) {
		if (round == 1)
			tu_peers_prune();
		for (i = 0; i < TU_PEERS_MAX; i++) {
			if (tu_peers[i] == pid) {
				slot = i;
				break;
			}
			if (tu_peers[i] == 0 && slot == TU_PEERS_MAX)
				slot = i;
		}
	}
	if (slot < TU_PEERS_MAX) {
		snprintf(tu_peer_names[slot], sizeof(tu_peer_names[slot]), "%s",
			 base);
		__atomic_store_n(&tu_peers[slot], pid, __ATOMIC_RELAXED);
	} else {
		fprintf(stderr, "tu_spawn: more than %d peers running: pid %d "
			"is not killed at the end of the test\n", TU_PEERS_MAX,
			(int)pid);
	}
	pthread_mutex_unlock(&tu_peers_lock);
}

/* @pid has been reaped. */
static void tu_peer_forget(pid_t pid)
{
	pthread_mutex_lock(&tu_peers_lock);
	for (size_t i = 0; i < TU_PEERS_MAX; i++)
		if (tu_peers[i] == pid)
			__atomic_store_n(&tu_peers[i], 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tu_peers_lock);
}

int tu_kill_peers(void)
{
	static pid_t pids[TU_PEERS_MAX];
	static char names[TU_PEERS_MAX][24];
	static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
	size_t n = 0;
	int killed = 0;

	pthread_mutex_lock(&one_at_a_time);
	pthread_mutex_lock(&tu_peers_lock);
	for (size_t i = 0; i < TU_PEERS_MAX; i++) {
		if (tu_peers[i] <= 0)
			continue;
		pids[n] = tu_peers[i];
		memcpy(names[n++], tu_peer_names[i], sizeof(names[0]));
		__atomic_store_n(&tu_peers[i], 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&tu_peers_lock);
	for (size_t i = 0; i < n; i++) {
		int state = tu_child_state(pids[i]);

		if (state < 0)
			continue; /* reaped by the test itself */
		if (state == 1) {
			fprintf(stderr, "tu_kill_peers: peer %s (pid %d) still "
				"running: killed\n", names[i], (int)pids[i]);
			kill(pids[i], SIGKILL);
			killed++;
		}
		/* SIGKILL ends even a stopped process; bounded all the same. */
		tu_wait(pids[i], 10000, NULL);
	}
	pthread_mutex_unlock(&one_at_a_time);
	return killed;
}

/* Every program linked with this file: if tu_spawn_ex() started it, die
 * with that process. */
__attribute__((constructor)) static void tu_peer_init(void)
{
	const char *s = getenv(TU_PARENT_ENV);
	long want;

	if (!s)
		return;
	want = strtol(s, NULL, 10);
	/* Ours alone: not for what we start by other means. */
	unsetenv(TU_PARENT_ENV);
	if (want <= 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return;
	tu_pdeath = true;
	/* Our parent may have died before the prctl: we were reparented and
	 * no signal comes.  (Not our parent at all, yet alive: a program in
	 * between, such as timeout(1), started us; we die with that one.) */
	if (getppid() != (pid_t)want && kill((pid_t)want, 0) < 0 &&
	    errno == ESRCH)
		raise(SIGKILL);
}

/* The full path of @exe: relative names are taken relative to the
 * directory of the running executable (tests and peers are built side by
 * side, TEST_BINDIR). */
static int tu_exe_path(char *path, size_t n, const char *exe)
{
	if (exe[0] == '/') {
		if (strlen(exe) >= n)
			return -ENAMETOOLONG;
		strcpy(path, exe);
		return 0;
	}
	ssize_t len = readlink("/proc/self/exe", path, n);
	char *slash;

	if (len < 0)
		return -errno;
	if ((size_t)len >= n)
		return -ENAMETOOLONG;
	path[len] = '\0';
	slash = strrchr(path, '/');
	if (!slash)
		return -ENOENT;
	slash[1] = '\0';
	if (strlen(path) + strlen(exe) >= n)
		return -ENAMETOOLONG;
	strcat(path, exe);
	return 0;
}

/* Does "NAME=value" @entry set one of the names set in @extra? */
static bool tu_env_overridden(const char *entry, const char *const *extra)
{
	size_t n = strcspn(entry, "=");

	for (; extra && *extra; extra++)
		if (strncmp(*extra, entry, n) == 0 && (*extra)[n] == '=')
			return true;
	return false;
}

/* environ less what @extra or @own override, plus @extra, plus @own
 * ("NAME=value"): a malloc'd array of borrowed strings, or NULL. */
static char **tu_env_merge(const char *const *extra, const char *own)
{
	const char *const owns[2] = { own, NULL };
	size_t n = 2, k = 0, i;

	for (i = 0; environ[i]; i++)
		n++;
	for (i = 0; extra && extra[i]; i++)
		n++;
	char **env = calloc(n, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0; environ[i]; i++)
		if (!tu_env_overridden(environ[i], extra) &&
		    !tu_env_overridden(environ[i], owns))
			env[k++] = environ[i];
	for (i = 0; extra && extra[i]; i++)
		if (!tu_env_overridden(extra[i], owns))
			env[k++] = (char *)extra[i];
	env[k++] = (char *)own;
	return env;
}

/*
 * PR_SET_PDEATHSIG fires when the *thread* that started the peer ends, not
 * the process.  The main thread lasts as long as the process; any other
 * hands its spawn to the spawner, a thread started on first need that
 * never ends: so a peer started by a thread that has ended lives on, and
 * still dies when the process is killed.
 */
struct tu_spawn_req {
	pid_t *pid;
	const char *path;
	const posix_spawn_file_actions_t *fa;
	char *const *argv;
	char *const *env;
	sigset_t mask;  /* the requester's: the peer starts with it */
	int res;
	bool done;
};

static pthread_mutex_t tu_spawner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tu_spawner_cond = PTHREAD_COND_INITIALIZER;
static struct tu_spawn_req *tu_spawner_req; /* handed over, not done */
static pthread_once_t tu_spawner_once = PTHREAD_ONCE_INIT;
static int tu_spawner_err;

static int tu_spawn_now(struct tu_spawn_req *q)
{
	posix_spawnattr_t at;
	int r = posix_spawnattr_init(&at);

	if (r)
		return -r;
	r = posix_spawnattr_setsigmask(&at, &q->mask);
	if (!r)
		r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	/* posix_spawn returns an errno value instead of setting errno. */
	if (!r)
		r = posix_spawn(q->pid, q->path, q->fa, &at, q->argv, q->env);
	posix_spawnattr_destroy(&at);
	return -r;
}

static void *tu_spawner(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&tu_spawner_lock);
	for (;;) {
		while (!tu_spawner_req)
			pthread_cond_wait(&tu_spawner_cond, &tu_spawner_lock);
		tu_spawner_req->res = tu_spawn_now(tu_spawner_req);
		tu_spawner_req->done = true;
		tu_spawner_req = NULL;
		pthread_cond_broadcast(&tu_spawner_cond);
	}
	return NULL;
}

static void tu_spawner_start(void)
{
	sigset_t all, old;
	pthread_attr_t at;
	pthread_t t;

	/* No signal meant for the test may land on the spawner. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	tu_spawner_err = -pthread_attr_init(&at);
	if (!tu_spawner_err)
		tu_spawner_err = -pthread_attr_setdetachstate(
			&at, PTHREAD_CREATE_DETACHED);
	if (!tu_spawner_err)
		tu_spawner_err = -pthread_create(&t, &at, tu_spawner, NULL);
	pthread_attr_destroy(&at);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int tu_posix_spawn(pid_t *pid, const char *path,
			  const posix_spawn_file_actions_t *fa,
			  char *const argv[], char *const env[])
{
	struct tu_spawn_req q = { .pid = pid, .path = path, .fa = fa,
				  .argv = argv, .env = env };

	pthread_sigmask(SIG_BLOCK, NULL, &q.mask);
	if (gettid() == getpid())
		return tu_spawn_now(&q);
	pthread_once(&tu_spawner_once, tu_spawner_start);
	if (tu_spawner_err)
		return tu_spawner_err;
	pthread_mutex_lock(&tu_spawner_lock);
	/* One request at a time: wait for the slot, then for the answer. */
	while (tu_spawner_req)
		pthread_cond_wait(&tu_spawner_cond, &tu_spawner_lock);
	tu_spawner_req = &q;
	pthread_cond_broadcast(&tu_spawner_cond);
	while (!q.done)
		pthread_cond_wait(&tu_spawner_cond, &tu_spawner_lock);
	pthread_mutex_unlock(&tu_spawner_lock);
	return q.res;
}

int tu_spawn_ex(pid_t *pid, const char *exe, char *const argv[],
		const struct tu_spawn_opts *o)
{
	posix_spawn_file_actions_t fa;
	char path[PATH_MAX], parent[32];
	char **env;
	int pipefd[2] = { -1, -1 };
	int r;

	if (!pid || !exe || !argv || !argv[0])
		return -EINVAL;
	r = tu_exe_path(path, sizeof(path), exe);
	if (r < 0)
		return r;
	/* Die with this process: the peer is started by a thread that lasts
	 * as long as the process (tu_posix_spawn()). */
	snprintf(parent, sizeof(parent), TU_PARENT_ENV "=%d", (int)getpid());
	env = tu_env_merge(o ? o->env : NULL, parent);
	if (!env)
		return -ENOMEM;
	r = posix_spawn_file_actions_init(&fa);
	if (r) {
		r = -r;
		goto out_env;
	}
	if (o && o->report_fd) {
		if (pipe2(pipefd, O_CLOEXEC) < 0) {
			r = -errno;
			goto out_fa;
		}
		/* dup2 clears close-on-exec on the child's stdout only. */
		r = posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
		if (!r && o->report_stderr)
			r = posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
		if (r) {
			r = -r;
			goto out_fa;
		}
	}
	r = tu_posix_spawn(pid, path, &fa, argv, env);
	if (r == 0)
		tu_peer_add(*pid, path);
	if (r == 0 && o && o->report_fd) {
		*o->report_fd = pipefd[0];
		pipefd[0] = -1;
	}
out_fa:
	posix_spawn_file_actions_destroy(&fa);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
out_env:
	free(env);
	return r;
}

int tu_spawn(pid_t *pid, const char *exe, char *const argv[])
{
	return tu_spawn_ex(pid, exe, argv, NULL);
}

int tu_read_line(int fd, char *buf, size_t n, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
	size_t len = 0;

	if (n == 0)
		return -EINVAL;
	for (;;) {
		uint64_t now = tu_now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, now >= deadline ? 0 : (int)(deadline - now));
		char ch;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t got = read(fd, &ch, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EPIPE;
		if (ch == '\n') {
			buf[len] = '\0';
			return (int)len;
		}
		if (len + 1 >= n)
			return -EMSGSIZE;
		buf[len++] = ch;
	}
}

/* /proc/net/unix, lines "Num RefCount Protocol Flags Type St Inode Path";
 * an abstract name's path is shown with '@' for its leading NUL, as evshm
 * spells it.  Flags has __SO_ACCEPTCON (0x10000) for a listener.  A
 * connection not yet accepted is a socket of its own, already bound to the
 * listener's name, in state SS_CONNECTING (St 02).  Counts the sockets at
 * @name that listen (@pending false) or wait to be accepted (@pending
 * true). */
static int tu_unix_count(const char *name, bool pending)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long flags;
		unsigned st;
		char path[256];

		if (sscanf(line, "%*s %*s %*s %lx %*s %x %*s %255s", &flags, &st,
			   path) != 3 || strcmp(path, name) != 0)
			continue;
		if (pending ? !(flags & 0x10000) && st == 2 : !!(flags & 0x10000))
			n++;
	}
	fclose(f);
	return n;
}

static int tu_wait_count(const char *name, bool pending, int n,
			 int timeout_ms)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 2000000 };
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int r = tu_unix_count(name, pending);
		if (r < 0)
			return r;
		if (r >= n)
			return 0;
		if (tu_now_ms() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
}

int tu_wait_listening(const char *name, int timeout_ms)
{
	return tu_wait_count(name, false, 1, timeout_ms);
}

int tu_wait_backlog(const char *name, int n, int timeout_ms)
{
	return tu_wait_count(name, true, n, timeout_ms);
}

int tu_die_with_parent(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	tu_pdeath = true;
	return 0;
}

int tu_become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw)
		return -ENOENT;
	/* Groups first: after setresuid we could no longer change them. */
	if (setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return -errno;
	/* A credential change makes the process non-dumpable, which would
	 * keep LeakSanitizer (in sanitizer runs) from inspecting it. */
	prctl(PR_SET_DUMPABLE, 1);
	/* It also clears the parent-death signal. */
	if (tu_pdeath && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	return 0;
}

int tu_connect_retry(struct evshm_chan **c, const char *name,
		     const struct evshm_opts *o, int timeout_ms, uint64_t *ms)
{
	int res = -ECONNREFUSED;

	for (int i = 0; i < 2500; i++) {
		uint64_t t0 = tu_now_ms();

		res = evshm_connect(c, name, o, timeout_ms);
		if (ms)
			*ms = tu_now_ms() - t0;
		if (res != -ENOENT && res != -ECONNREFUSED)
			break;
		usleep(2000);
	}
	return res;
}

uint64_t tu_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* For valgrind (3.19 does not know pidfd_open): poll waitpid(WNOHANG). */
static int tu_wait_poll(pid_t pid, uint64_t deadline, int timeout_ms,
			int *status)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 2000000 };
	int st = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			tu_peer_forget(pid);
			break;
		}
		if (r < 0 && errno != EINTR)
			return -errno;
		if (timeout_ms >= 0 && tu_now_ms() >= deadline) {
			fprintf(stderr, "tu_wait: pid %d still running after "
				"%d ms: killed\n", (int)pid, timeout_ms);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			tu_peer_forget(pid);
			if (status)
				*status = st;
			return -ETIMEDOUT;
		}
		nanosleep(&tick, NULL);
	}
	if (status)
		*status = st;
	return 0;
}

int tu_wait(pid_t pid, int timeout_ms, int *status)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	struct pollfd pfd;
	int st = 0, pidfd, r;

	/* A pidfd polls readable when the process exits: a real wait with a
	 * timeout, no sleep loop and no SIGCHLD handler. */
	if (tu_no_pidfd)
		return tu_wait_poll(pid, deadline, timeout_ms, status);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno == ENOSYS) {
		tu_no_pidfd = true;
		return tu_wait_poll(pid, deadline, timeout_ms, status);
	}
	if (pidfd < 0)
		return -errno;
	pfd.fd = pidfd;
	pfd.events = POLLIN;
	for (;;) {
		int left = -1;

		if (timeout_ms >= 0) {
			uint64_t now = tu_now_ms();

			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		r = poll(&pfd, 1, left);
		if (r > 0 || (r < 0 && errno != EINTR))
			break;
		if (r == 0 && tu_now_ms() >= deadline)
			break;
	}
	close(pidfd);

	if (r == 0) {
		fprintf(stderr, "tu_wait: pid %d still running after %d ms: "
			"killed\n", (int)pid, timeout_ms);
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	tu_peer_forget(pid);
	if (status)
		*status = st;
	return r == 0 ? -ETIMEDOUT : 0;
}

bool tu_pid_running(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

int tu_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int tu_count_fds(void)
{
	/* Descriptors a peer chose may be closed by a thread of their own
	 * (os_close_untrusted): let those finish first. */
	os_close_wait(5000);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	/* The listing includes the descriptor that read it. */
	return n - 1;
}

static int tu_rm_entry(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void tu_cleanup(void)
{
	if (!tu_dir[0])
		return;
	/* Depth first, not following symlinks: children before parents. */
	nftw(tu_dir, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tu_dir[0] = '\0';
}

const char *tu_tmpdir(void)
{
	static bool registered;
	const char *base = getenv("TMPDIR");

	if (tu_dir[0])
		return tu_dir;
	if (!base || base[0] != '/' || strlen(base) > TU_TMPDIR_MAX - 16)
		base = "/tmp";
	snprintf(tu_dir, sizeof(tu_dir), "%s/evshm-XXXXXX", base);
	if (!mkdtemp(tu_dir)) {
		fprintf(stderr, "tu_tmpdir: mkdtemp(%s): %s\n", tu_dir,
			strerror(errno));
		abort();
	}
	if (!registered) {
		atexit(tu_cleanup);
		registered = true;
	}
	return tu_dir;
}

void tu_unique_name(char *buf, size_t n, const char *prefix, bool abstract)
{
	unsigned k = ++tu_counter;

	if (abstract)
		snprintf(buf, n, "@%s-%d-%u", prefix, (int)getpid(), k);
	else
		snprintf(buf, n, "%s/%s-%u", tu_tmpdir(), prefix, k);
}

int tu_test_teardown(void **state)
{
	(void)state;
	tu_kill_peers();
	return 0;
}

int tu_run_tests(const struct CMUnitTest *tests, size_t n, int argc,
		 char **argv)
{
	char filter[128];

	if (argc > 1) {
		snprintf(filter, sizeof(filter), "*%s*", argv[1]);
		cmocka_set_test_filter(filter);
	}
	signal(SIGPIPE, SIG_IGN);
	/* Each test that has no teardown of its own gets one that kills the
	 * peers it left (cmocka runs it after a failed assertion too). */
	struct CMUnitTest *t = calloc(n, sizeof(*t));
	if (!t)
		return 1;
	for (size_t i = 0; i < n; i++) {
		t[i] = tests[i];
		if (!t[i].teardown_func)
			t[i].teardown_func = tu_test_teardown;
	}
	int fds0 = tu_count_fds();
	int res = _cmocka_run_group_tests(argv[0], t, n, NULL, NULL);
	free(t);
	tu_cleanup();
	/* Whatever each test checked, the whole group must leave no
	 * descriptor behind. */
	int fds1 = tu_count_fds();
	if (res == 0 && fds1 != fds0) {
		fprintf(stderr, "descriptor leak over the whole run: %d -> %d\n",
			fds0, fds1);
		return 1;
	}
	return res;
}

uint64_t tu_scaled(uint64_t n)
{
	const char *s = getenv("EVSHM_TEST_SCALE");
	unsigned long long d = s ? strtoull(s, NULL, 10) : 1;

	if (d < 2)
		return n;
	return n / d ? n / d : 1;
}

/* xorshift32: cheap, and a shifted or partial copy does not match. */
static uint32_t tu_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

void tu_fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = p;
	uint32_t x = seed | 1u;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)tu_next(&x);
}

bool tu_check_fill(const void *p, size_t n, uint32_t seed)
{
	const unsigned char *b = p;
	uint32_t x = seed | 1u;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != (unsigned char)tu_next(&x))
			return false;
	return true;
}

const char *tu_errname(long err)
{
	const char *s;

	if (err >= 0)
		return "not an error";
	err = -err;
	if (err > INT_MAX)
		return "?";
	s = strerrorname_np((int)err);
	return s ? s : "?";
}

int tu_errno_arg(const char *s)
{
	if (strcmp(s, "0") == 0)
		return 0;
	for (int e = 1; e < 4096; e++) {
		const char *n = strerrorname_np(e);
		if (n && strcmp(n, s) == 0)
			return -e;
	}
	fprintf(stderr, "unknown errno name %s\n", s);
	exit(2);
}

void tu_die(const char *file, int line, const char *what, bool has_res,
	    long res)
{
	if (has_res)
		fprintf(stderr, "%s:%d: [pid %d] %s = %ld (%s)\n", file, line,
			(int)getpid(), what, res, tu_errname(res));
	else
		fprintf(stderr, "%s:%d: [pid %d] check failed: %s\n", file,
			line, (int)getpid(), what);
	exit(1);
}

int tu_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

int tu_check_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -EPROTO;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0 ? 0 : -EPROTO;
}

int tu_eventfd_kick(int fd)
{
	const uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

int tu_eventfd_drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	if (n == sizeof(v))
		return 1;
	return errno == EAGAIN ? 0 : -errno;
}

#if defined(__x86_64__)
#define TU_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TU_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

int tu_refuse_syscall(long nr, int err)
{
#ifdef TU_AUDIT_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TU_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
#else
	(void)nr;
	(void)err;
	return -ENOSYS;
#endif
}

void tu_fd_echo_rounds(struct evshm_chan *c, int rounds)
{
	struct epoll_event ev = { .events = EPOLLIN };
	uint8_t b[16];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	assert_true(ep >= 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, evshm_fd(c), &ev), 0);
	for (int round = 0; round < rounds; round++) {
		tu_assert_res(evshm_recv(c, b, sizeof(b), 0), -EAGAIN);
		tu_assert_res(evshm_send(c, "ping", 4, 1000), 0);
		assert_int_equal(epoll_wait(ep, &ev, 1, 10000), 1);
		tu_assert_res(evshm_recv(c, b, sizeof(b), 0), 4);
	}
	tu_assert_res(evshm_recv(c, b, sizeof(b), 0), -EAGAIN);
	assert_int_equal(epoll_wait(ep, &ev, 1, 20), 0);
	close(ep);
}

int tu_lingering_socket(int *keep, int linger_s)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct linger lg = { .l_onoff = 1, .l_linger = linger_s };
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	static char junk[65536];

	tu_check(lfd >= 0 && fd >= 0);
	tu_check(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	tu_check(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
	tu_check(listen(lfd, 1) == 0);
	tu_check(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	/* Fill what the receiver's window and our send buffer hold (a few
	 * MiB at most: bounded by the kernel's buffer limits). */
	for (int i = 0; i < 4096; i++)
		if (send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
	tu_check(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	*keep = lfd;
	return fd;
}

int tu_watch_widely(int fd, int dups, int sets, int *opened)
{
	int d[dups];

	for (int i = 0; i < dups; i++) {
		if ((d[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
			return -errno;
		if (opened)
			opened[i] = d[i];
	}
	for (int j = 0; j < sets; j++) {
		int ep = epoll_create1(EPOLL_CLOEXEC);

		if (ep < 0)
			return -errno;
		if (opened)
			opened[dups + j] = ep;
		for (int i = 0; i < dups; i++) {
			struct epoll_event ev = { .events = EPOLLIN };

			if (epoll_ctl(ep, EPOLL_CTL_ADD, d[i], &ev) < 0)
				return -errno;
		}
	}
	return 0;
}
