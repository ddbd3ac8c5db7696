/* SPDX-License-Identifier: MIT */
/* bridge.c: see bridge.h. */
#include "bridge.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <evshm.h>
#include <zmq.h>

#include "keys.h"
#include "log.h"
#include "stats.h"
#include "wire.h"

#define TICK_MIN_MS 10u
#define TICK_MAX_MS 250u
#define STATS_EVERY_MS 1000u
#define CURVE_ENVELOPE 256u /* a MESSAGE command's name, nonce and MAC */
/* malloc: frames up to MMAP_BELOW come from the heap, and the heap keeps
 * up to TRIM_ABOVE of free memory instead of returning it at once. */
#define MMAP_BELOW (4 << 20)
#define TRIM_ABOVE (16 << 20)

/* Descriptors (bridge_fd_limits()): what the process, libzmq, the loop
 * and the stats file hold; what one bridged channel or topic stream holds
 * (an evshm channel: its socket, memfds, bells and epoll, measured: 10);
 * the clients an import's listener may park in their handshake (the
 * library parks up to 64). */
#define FDS_BASE 32u
#define FDS_PER_STREAM 10u
#define FDS_PARKED 64u
#define NR_OPEN_FALLBACK 1048576u

static const char *role_of(const struct bridge_cfg *cfg)
{
	return cfg->role == ROLE_EXPORT ? "export" : "import";
}

void bridge_log_init(const struct bridge_cfg *cfg)
{
	log_init(role_of(cfg), cfg->quiet ? LOG_ERROR
			       : cfg->verbose >= 2 ? LOG_DEBUG
			       : cfg->verbose ? LOG_INFO : LOG_NOTICE);
}

static uint64_t fds_needed(const struct bridge_cfg *cfg, uint64_t sessions,
			   uint64_t channels)
{
	if (cfg->role == ROLE_IMPORT && cfg->topic)
		/* One stream; its subscribers, as many as come. */
		return FDS_BASE + FDS_PARKED + FDS_PER_STREAM;
	if (cfg->role == ROLE_IMPORT)
		return FDS_BASE + FDS_PARKED + channels * FDS_PER_STREAM;
	return FDS_BASE + sessions * (1 + channels * FDS_PER_STREAM);
}

/* The kernel's ceiling for a descriptor limit. */
static rlim_t nr_open(void)
{
	unsigned long long n = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n ? (rlim_t)n : NR_OPEN_FALLBACK;
}

/* Streams that @have descriptors carry at once: an export keeps one for
 * each session's connection (up to half of what is left), an import its
 * parked clients. */
static uint64_t streams_within(const struct bridge_cfg *cfg, uint64_t have)
{
	uint64_t room = have > FDS_BASE ? have - FDS_BASE : 0, keep;

	if (cfg->role == ROLE_EXPORT)
		keep = cfg->max_sessions < room / 2 ? cfg->max_sessions : room / 2;
	else
		keep = FDS_PARKED < room / 2 ? FDS_PARKED : room / 2;
	return (room - keep) / FDS_PER_STREAM;
}

int bridge_fd_limits(struct bridge_cfg *cfg)
{
	uint64_t sessions = cfg->role == ROLE_EXPORT ? cfg->max_sessions : 1;
	uint64_t need, have, streams;
	struct rlimit rl;

	bridge_log_init(cfg);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_error("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -errno;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max;
		if (up.rlim_cur == RLIM_INFINITY || up.rlim_cur > nr_open())
			up.rlim_cur = nr_open();
		if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = up.rlim_cur;
	}
	have = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	need = fds_needed(cfg, sessions, cfg->max_channels);
	if (need <= have) {
		log_info("descriptors: %llu allowed, about %llu needed",
			 (unsigned long long)have, (unsigned long long)need);
		return 0;
	}
	streams = streams_within(cfg, have);
	if (!streams) {
		log_error("the descriptor limit (%llu, ulimit -Hn) does not "
			  "allow even one channel (about %llu descriptors): "
			  "raise the hard limit (LimitNOFILE= in a systemd unit, "
			  "ulimit -Hn, limits.conf)", (unsigned long long)have,
			  (unsigned long long)fds_needed(cfg, 1, 1));
		return -EMFILE;
	}
	/* Sessions and the channels of each stay as asked: a channel
	 * beyond what the descriptors carry at once is refused (EMFILE)
	 * when it opens, whichever session it comes from. */
	log_notice("the descriptor limit (%llu, ulimit -Hn) is below the "
		   "%llu that %llu session%s of up to %llu channels need: "
		   "serving at most %llu channel%s at once; raise the hard "
		   "limit (LimitNOFILE= in a systemd unit, ulimit -Hn, "
		   "limits.conf) or lower --max-channels%s",
		   (unsigned long long)have, (unsigned long long)need,
		   (unsigned long long)sessions, sessions == 1 ? "" : "s",
		   (unsigned long long)cfg->max_channels,
		   (unsigned long long)streams, streams == 1 ? "" : "s",
		   cfg->role == ROLE_EXPORT ? " or --max-sessions" : "");
	if (cfg->role == ROLE_EXPORT)
		cfg->max_open = streams;
	else if (!cfg->topic)
		cfg->max_channels = streams;
	return 0;
}

static void on_signal(struct watch *w, uint32_t events)
{
	struct bridge *b = (struct bridge *)(void *)((char *)w -
						     offsetof(struct bridge, sig_w));
	struct signalfd_siginfo si;

	(void)events;
	if (read(b->sfd, &si, sizeof(si)) == sizeof(si)) {
		log_notice("%s: shutting down", strsignal((int)si.ssi_signo));
		b->stop = true;
	}
}

static int load_keys(struct bridge *b)
{
	const struct bridge_cfg *cfg = b->cfg;
	char err[512];

	b->sec.insecure = cfg->insecure;
	if (cfg->insecure) {
		log_notice("--insecure: traffic is neither encrypted nor "
			   "authenticated");
		return 0;
	}
	if (!zmq_has("curve")) {
		log_error("this libzmq has no CURVE support: nothing secure is "
			  "possible (--insecure, on a network you trust)");
		return -ENOTSUP;
	}
	if (keys_load_pair(cfg->key, &b->sec.kp, err, sizeof(err)) < 0 ||
	    (cfg->role == ROLE_IMPORT &&
	     keys_load_public(cfg->server_key, b->sec.server_pub, err,
			      sizeof(err)) < 0)) {
		log_error("%s", err);
		return -EINVAL;
	}
	return 0;
}

int bridge_setup(struct bridge *b, const struct bridge_cfg *cfg)
{
	sigset_t set;
	int res;

	*b = (struct bridge){ .cfg = cfg, .sfd = -1,
			      .sig_w = { .fn = on_signal, .fd = -1 } };
	bridge_log_init(cfg);
	/* A quarter of a heartbeat, so that the silence limit is checked
	 * within timeout/20 of its expiry (--timeout >= 2 x --heartbeat). */
	b->tick_ms = cfg->timeout_ms / 20;
	if (b->tick_ms < TICK_MIN_MS)
		b->tick_ms = TICK_MIN_MS;
	if (b->tick_ms > TICK_MAX_MS)
		b->tick_ms = TICK_MAX_MS;
	if (load_keys(b) < 0)
		return BRIDGE_EXIT_FAIL;
	/* Every frame is a malloc in one thread and a free in another
	 * (ours, libzmq's).  With glibc's defaults, frames of 64 KiB and up
	 * made the heap grow and shrink (or be mapped and unmapped) all the
	 * time: page faults cost a fifth of the throughput at 64 KiB.  The
	 * memory kept is what was in use at the peak: the credit windows,
	 * and what libzmq held for connections (docs/bridge.md, "Security
	 * model": up to a frame each, before authentication too). */
	mallopt(M_MMAP_THRESHOLD, MMAP_BELOW);
	mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	b->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (b->sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return BRIDGE_EXIT_FAIL;
	}
	res = loop_new(&b->loop);
	if (res == 0)
		res = loop_add(b->loop, &b->sig_w, b->sfd, EPOLLIN);
	if (res < 0) {
		log_error("event loop: %s", strerror(-res));
		return BRIDGE_EXIT_FAIL;
	}
	b->ctx = zmq_ctx_new();
	if (!b->ctx || zmq_ctx_set(b->ctx, ZMQ_BLOCKY, 0) < 0) {
		log_error("ZeroMQ context: %s", zmq_strerror(zmq_errno()));
		return BRIDGE_EXIT_FAIL;
	}
	return 0;
}

struct zsock_params bridge_sock_params(const struct bridge *b, int type)
{
	return (struct zsock_params){
		.type = type,
		.heartbeat_ms = b->cfg->heartbeat_ms,
		.timeout_ms = b->cfg->timeout_ms,
		/* The largest DATA frame either side may legitimately send
		 * (a message of the largest ring a channel may have here),
		 * plus CURVE's envelope: libzmq applies the limit to the
		 * frame as it is on the wire. */
		.max_frame = WIRE_HDR_SIZE + EVSHM_MAX_MSG(b->cfg->ring) +
			     CURVE_ENVELOPE,
	};
}

static void write_stats(struct bridge *b)
{
	int res;

	if (!b->cfg->stats_file)
		return;
	res = stats_write(b->cfg->stats_file);
	/* Said once, not every second. */
	if (res < 0 && !b->stats_failed)
		log_error("--stats-file %s: %s", b->cfg->stats_file,
			  strerror(-res));
	b->stats_failed = res < 0;
}

int bridge_run(struct bridge *b, const struct role_ops *role)
{
	uint64_t next_tick = loop_now_ms(), next_stats = next_tick;
	int res = 0;

	while (!b->stop) {
		uint64_t now = loop_now_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;

		if (role->pending(b))
			timeout = 0;
		res = loop_wait(b->loop, timeout);
		if (res < 0) {
			log_error("epoll: %s", strerror(-res));
			break;
		}
		role->poll(b);
		loop_run_tasks(b->loop);
		now = loop_now_ms();
		if (now >= next_tick) {
			role->tick(b, now);
			next_tick = now + b->tick_ms;
		}
		if (now >= next_stats) {
			write_stats(b);
			next_stats = now + STATS_EVERY_MS;
		}
	}
	role->shutdown(b);
	write_stats(b);
	return res < 0 ? BRIDGE_EXIT_FAIL : BRIDGE_EXIT_OK;
}

void bridge_cleanup(struct bridge *b)
{
	if (b->ctx)
		zmq_ctx_term(b->ctx); /* waits out the sockets' linger */
	if (b->loop) {
		loop_del(b->loop, &b->sig_w);
		loop_free(b->loop);
	}
	if (b->sfd >= 0)
		close(b->sfd);
	explicit_bzero(&b->sec, sizeof(b->sec));
}
