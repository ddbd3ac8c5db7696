/* SPDX-License-Identifier: MIT */
/*
 * evpy.h: the CPython extension module evshm._evshm.  It sits on the public
 * API (evshm.h) only.  Files, one job each:
 *   module.c    the module: types, constants, the library version check;
 *   call.c      arguments, timeouts, errors, and the blocking-call loop
 *               (GIL released, cut into slices for signal handlers);
 *   opts.c      keyword options -> struct evshm_opts, through one table;
 *   ep.c        what a Channel, a Publisher and a Subscriber share: one C
 *               struct (struct evpy_ep), its life, its sides, its errors;
 *   io.c        the methods they share: send, reserve, recv, recv_many,
 *               recv_into, peek, peek_many, fileno, iteration, close,
 *               with, asyncio;
 *   chan.c      evshm.Channel, evshm.connect();
 *   topic.c     evshm.Publisher, evshm.Subscriber, publish(), subscribe();
 *   listener.c  evshm.Listener, evshm.listen();
 *   zcopy.c     evshm.Message (peek), evshm.MessageRun (peek_many) and
 *               evshm.Reservation (reserve): the buffer exporters of the
 *               zero-copy calls.
 *
 * Lifetime rule (zcopy.c and ep.c): an endpoint's shared memory is mapped
 * for as long as a call on it is under way or a buffer exported from it is
 * alive.  close() marks it closed at once; the library's close, which
 * unmaps, runs when the last of those ends (evpy_ep_unpin()).
 */
#ifndef EVPY_H
#define EVPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include <evshm.h>

/* A result meaning "a Python exception is set".  Never a negative errno
 * (those are > -4096). */
#define EVPY_PYERR INT_MIN

/* --- call.c: arguments ---------------------------------------------------- */

/* Parse a METH_FASTCALL | METH_KEYWORDS call: @names is NULL-terminated,
 * the first @nreq are required; out[i] must hold the default (borrowed) on
 * entry and holds the argument (borrowed) on return.  0, or -1 with
 * TypeError set. */
int evpy_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
	      PyObject *kwnames, const char *const names[], int nreq,
	      PyObject **out);

/* A size argument: a non-negative int.  0, or -1 with an exception. */
int evpy_size(PyObject *v, size_t *out);

/* --- call.c: timeouts and blocking calls ----------------------------------- */

/* A timeout argument: None waits forever, 0 never waits, seconds else. */
struct evpy_deadline {
	bool forever;
	bool nonblock;
	uint64_t end_ns; /* CLOCK_MONOTONIC; only when neither of the above */
};

/* 0, or -1 with TypeError / ValueError set. */
int evpy_deadline_init(struct evpy_deadline *d, PyObject *timeout);

/* The timeout in milliseconds for a library call that must not be cut in
 * slices (evshm_connect): -1, 0, or the time left, rounded up. */
int evpy_deadline_ms(const struct evpy_deadline *d);

/* One library call that may wait; returns 0 or more, or a negative errno. */
typedef int (*evpy_wait_fn)(void *arg, int timeout_ms);

/*
 * Run @fn with the GIL released until it returns anything but -ETIMEDOUT
 * or the deadline passes (-ETIMEDOUT).  The library retries EINTR itself,
 * so a signal would not end its wait: each call waits at most
 * EVPY_SLICE_MS, and between calls Python runs its signal handlers (an
 * exception from one, e.g. KeyboardInterrupt, returns EVPY_PYERR) and
 * *@closed is checked (ValueError, EVPY_PYERR: close() from another
 * thread).  A nonblocking deadline makes exactly one call with timeout 0.
 */
int evpy_wait(const struct evpy_deadline *d, evpy_wait_fn fn, void *arg,
	      const bool *closed);

#define EVPY_SLICE_MS 50

/* --- call.c: errors --------------------------------------------------------- */

extern PyObject *evpy_ProtocolError;

/*
 * Set the Python exception for a library result @err (a negative errno;
 * EVPY_PYERR: already set) and return NULL.  OSError(errno, text) picks
 * the subclass Python users expect (TimeoutError, BlockingIOError,
 * BrokenPipeError, PermissionError, FileNotFoundError,
 * ConnectionRefusedError, ...); -EPROTO gives evshm.ProtocolError.
 * @reason (may be NULL) is appended to the text: the library's
 * evshm_error_reason().  @filename (may be NULL) becomes the exception's
 * filename.
 */
PyObject *evpy_raise_why(int err, const char *reason, PyObject *filename);
PyObject *evpy_raise(int err, PyObject *filename);

/* OSError(errnum, formatted text), as the errno's subclass; NULL. */
PyObject *evpy_oserror(int errnum, const char *fmt, ...);

/* ValueError("I/O operation on closed <what>"), NULL. */
PyObject *evpy_closed(const char *what);

/* --- opts.c ---------------------------------------------------------------- */

/* Which call takes an option: one of these. */
enum { EVPY_LISTEN = 1, EVPY_CONNECT = 2, EVPY_PUBLISH = 4, EVPY_SUBSCRIBE = 8 };

/* What authorize= needs while a listener or publisher lives, or a connect
 * runs. */
struct evpy_auth {
	PyObject *fn; /* the callable, strong reference; NULL: none */
	/* What it raised during the current call (PyErr_Fetch), or NULLs. */
	PyObject *type, *value, *tb;
};

/* Fill @o from the keyword arguments @kw (may be NULL) of a call of kind
 * @where, setting authorize to @auth's trampoline if given.  0, or -1
 * with TypeError / ValueError / OverflowError set. */
int evpy_opts(struct evshm_opts *o, PyObject *kw, unsigned where,
	      struct evpy_auth *auth);

/* If authorize raised during the call just made, raise that and return
 * true. */
bool evpy_auth_reraise(struct evpy_auth *auth);
void evpy_auth_clear(struct evpy_auth *auth);

/* A policy as Python names it: "reliable" or "latest". */
const char *evpy_policy_name(unsigned policy);

/* --- ep.c: the endpoint ------------------------------------------------------ */

struct evpy_msg;
struct evpy_resv;
struct evpy_ep;

/* What a reservation is to the send side (zcopy.c). */
enum evpy_resv_state {
	EVPY_RESV_NONE,      /* nothing reserved */
	EVPY_RESV_OPEN,      /* reserved, its with-block runs */
	EVPY_RESV_ABANDONED, /* reserved, to be cancelled once no view of it
				is alive (see zcopy.c) */
};

/* The sides of an endpoint.  A channel has both, each for one thread at a
 * time; a publisher only TX and a subscriber only RX, which every call on
 * them takes (the library allows one thread at a time per topic end). */
enum evpy_side { EVPY_RX, EVPY_TX };

/* The library calls behind the shared methods, per kind of endpoint; NULL
 * where the kind has no such call. */
struct evpy_ep_ops {
	const char *what; /* "channel", "publisher", "subscriber" */
	int side;         /* the one side every call takes (EVPY_TX,
			     EVPY_RX), or -1: two sides (a channel) */
	int (*peek)(void *h, const void **ptr, size_t *len, int ms);
	int (*release)(void *h);
	int (*peek_next)(void *h, const void **ptr, size_t *len);
	int (*recv)(void *h, void *buf, size_t cap, int ms);
	int (*send)(void *h, const void *buf, size_t len, int ms);
	int (*send_fds)(void *h, const void *buf, size_t len, const int *fds,
			unsigned nfds, int ms);
	int (*reserve)(void *h, size_t len, void **ptr, int ms);
	int (*commit)(void *h, size_t len);
	int (*cancel)(void *h);
	int (*fd)(void *h);
	void (*stats)(const void *h, struct evshm_stats *st);
	const char *(*reason)(const void *h); /* may be NULL */
	void (*close)(void *h);
};

struct evpy_ep {
	PyObject_HEAD
	void *h;              /* the library's handle; NULL once closed */
	const struct evpy_ep_ops *ops;
	bool closed;          /* close() called: every call says so */
	bool busy[2];         /* a call on that side is under way */
	unsigned pins;        /* calls under way + exported buffers */
	size_t max_msg;       /* fixed at the handshake */
	int fd;               /* what fileno() gave, -1: never asked */
	PyObject *name;       /* publisher, subscriber: where; else NULL */
	/* Receive side: a message (or a run of them) peeked and not
	 * released yet.  msg is its Message or MessageRun object (borrowed:
	 * it holds a reference to us), NULL if that died first. */
	bool peeked;
	struct evpy_msg *msg;
	/* Send side: the open reservation (see zcopy.c). */
	enum evpy_resv_state resv_state;
	void *resv_ptr;
	size_t resv_len;
	struct evpy_resv *resv; /* borrowed, like msg */
	/* Publisher: authorize (its address is the library's
	 * authorize_arg).  Subscriber: the policy and the publisher's
	 * credentials, fixed at the handshake. */
	struct evpy_auth auth;
	unsigned policy;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	PyObject *weakrefs;
};

/* A new endpoint of @type for the handle @h (which it owns from then on:
 * on failure it is closed); NULL on error. */
PyObject *evpy_ep_new(PyTypeObject *type, const struct evpy_ep_ops *ops,
		      void *h);

/* The fields every endpoint type object shares. */
#define EVPY_EP_TYPE(pyname, doc, repr, methods, getset)		\
	PyVarObject_HEAD_INIT(NULL, 0)					\
	.tp_name = pyname,						\
	.tp_doc = doc,							\
	.tp_basicsize = sizeof(struct evpy_ep),				\
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,		\
	.tp_dealloc = (destructor)evpy_ep_dealloc,			\
	.tp_traverse = (traverseproc)evpy_ep_traverse,			\
	.tp_clear = (inquiry)evpy_ep_clear,				\
	.tp_repr = (reprfunc)repr,					\
	.tp_methods = methods,						\
	.tp_getset = getset,						\
	.tp_weaklistoffset = offsetof(struct evpy_ep, weakrefs)

/* ...and those of the types that receive (iteration, async for). */
#define EVPY_EP_RX_TYPE							\
	.tp_as_async = &evpy_io_async,					\
	.tp_iter = PyObject_SelfIter,					\
	.tp_iternext = (iternextfunc)evpy_io_iternext

/* tp_dealloc, tp_traverse and tp_clear of the endpoint types. */
void evpy_ep_dealloc(struct evpy_ep *ep);
int evpy_ep_traverse(struct evpy_ep *ep, visitproc visit, void *arg);
int evpy_ep_clear(struct evpy_ep *ep);

/* A buffer or a call needs the mapping / no longer needs it.  The last
 * unpin of a closed endpoint closes it. */
void evpy_ep_pin(struct evpy_ep *ep);
void evpy_ep_unpin(struct evpy_ep *ep);

/* A call on @side begins, without the message or reservation step of
 * evpy_ep_begin() (publisher.serve()): not closed (ValueError), no other
 * thread on that side (RuntimeError); then the side is busy and the
 * mapping pinned.  0, or -1 with an exception. */
int evpy_ep_enter(struct evpy_ep *ep, enum evpy_side side);
void evpy_ep_end(struct evpy_ep *ep, enum evpy_side side);

/* For calls that do not wait (the GIL stays held): not closed, nobody on
 * @side.  0, or -1 with an exception. */
int evpy_ep_check(struct evpy_ep *ep, enum evpy_side side);

/* For calls that neither wait nor belong to a side (fileno, stats...):
 * not closed, and for a publisher or subscriber nobody in a call.  0, or
 * -1 with an exception. */
int evpy_ep_quick(struct evpy_ep *ep);

/* Raise the exception for the library result @err of a call on @ep, with
 * its evshm_error_reason() where there is one.  Call it before
 * evpy_ep_end() (the handle must still be there).  NULL. */
PyObject *evpy_ep_raise(struct evpy_ep *ep, int err);


/* --- io.c: the shared methods ------------------------------------------------ */

/* Each is a method of the endpoint types that have the library call. */
PyObject *evpy_io_send(struct evpy_ep *ep, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_send_fds(struct evpy_ep *ep, PyObject *const *args,
			   Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_reserve(struct evpy_ep *ep, PyObject *const *args,
			  Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_commit(struct evpy_ep *ep, PyObject *const *args,
			 Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_recv(struct evpy_ep *ep, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_recv_many(struct evpy_ep *ep, PyObject *const *args,
			    Py_ssize_t nargs, PyObject *kwnames);
/* Its docstring, the same on a Channel and a Subscriber. */
#define EVPY_RECV_MANY_DOC                                                    \
	"recv_many(max=64, timeout=None)\n--\n\nReceive a list of 1 to max "  \
	"messages as bytes: the first waits as recv() does, the rest are "    \
	"those already behind it (evshm_peek_next()), handed back with one "  \
	"release, up to 64 KiB.  For a receiver that falls behind.  Stops "   \
	"before a message with descriptors.  MemoryError: the messages of "   \
	"that call are lost."
PyObject *evpy_io_recv_into(struct evpy_ep *ep, PyObject *const *args,
			    Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_peek(struct evpy_ep *ep, PyObject *const *args,
		       Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_peek_many(struct evpy_ep *ep, PyObject *const *args,
			    Py_ssize_t nargs, PyObject *kwnames);
/* Its docstring, the same on a Channel and a Subscriber. */
#define EVPY_PEEK_MANY_DOC                                                    \
	"peek_many(max=64, timeout=None)\n--\n\nZero-copy recv_many(): `with " \
	"ch.peek_many() as views:` gives a list of 1 to max read-only "       \
	"memoryviews of messages in shared memory, in order: the first "     \
	"waits as peek() does, the rest are those already behind it "         \
	"(evshm_peek_next()), up to 64 KiB.  Stops before a message with "    \
	"descriptors.  The end of the block releases them all with one "      \
	"release, under peek()'s rules: every view is released; views "      \
	"derived from them must be gone by then (else BufferError, and the "  \
	"messages stay unreleased); latest topic: OSError ESTALE if the "     \
	"publisher overwrote any of them meanwhile: discard what you read."
PyObject *evpy_io_iternext(struct evpy_ep *ep);
PyObject *evpy_io_fileno(struct evpy_ep *ep, PyObject *unused);
PyObject *evpy_io_stats(struct evpy_ep *ep, PyObject *unused);
PyObject *evpy_io_close(struct evpy_ep *ep, PyObject *unused);
PyObject *evpy_io_enter(struct evpy_ep *ep, PyObject *unused);
PyObject *evpy_io_exit(struct evpy_ep *ep, PyObject *args);
PyObject *evpy_io_get_closed(struct evpy_ep *ep, void *unused);
PyObject *evpy_io_get_max_msg(struct evpy_ep *ep, void *unused);
PyObject *evpy_io_arecv(PyObject *self, PyObject *unused);
PyObject *evpy_io_arecv_many(PyObject *self, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames);
PyObject *evpy_io_asend(PyObject *self, PyObject *data);
/* async for: __aiter__ and __anext__ (arecv until the peer has gone). */
extern PyAsyncMethods evpy_io_async;

/* Peek with the deadline @timeout (a Python argument); 0, or a negative
 * errno / EVPY_PYERR.  The RX side must be begun. */
int evpy_io_peek_wait(struct evpy_ep *ep, PyObject *timeout,
		      const void **ptr, size_t *len);

/* (pid, uid, gid) as an evshm.PeerCred. */
PyObject *evpy_cred_new(pid_t pid, uid_t uid, gid_t gid);

/* --- async delegation (module.c) -------------------------------------------- */

/* Call evshm._aio.@fname(self[, arg]): a coroutine. */
PyObject *evpy_aio(const char *fname, PyObject *self, PyObject *arg);

/* close() of an object whose fileno() gave @fd (-1: never asked): wake
 * the coroutines that wait for @fd on an asyncio loop (they retry and get
 * ValueError) and stop the loops watching it, before it is closed and its
 * number reused.  Never fails (an error goes to sys.unraisablehook). */
void evpy_aio_closing(int fd);

/* --- chan.c ------------------------------------------------------------------- */

extern PyTypeObject evpy_ChanType;
extern const struct evpy_ep_ops evpy_chan_ops;
/* A Channel for @c (which it owns from then on); NULL on error (and @c is
 * closed). */
PyObject *evpy_chan_new(struct evshm_chan *c);
PyObject *evpy_connect(PyObject *mod, PyObject *args, PyObject *kw);

/* How connect() and subscribe() open what they open. */
struct evpy_client {
	const char *fname;
	unsigned where; /* EVPY_CONNECT, EVPY_SUBSCRIBE */
	int (*open)(void **h, const char *name, const struct evshm_opts *o,
		    int ms);
	void (*close)(void *h);
};

/* Parse (name, timeout=None, **options) and open with @k: the handle, or
 * NULL with an exception.  *@name is the name argument (borrowed). */
void *evpy_open_client(const struct evpy_client *k, PyObject *args,
		       PyObject *kw, PyObject **name);

/* --- topic.c ------------------------------------------------------------------ */

extern PyTypeObject evpy_PubType;
extern PyTypeObject evpy_SubType;
PyObject *evpy_publish(PyObject *mod, PyObject *args, PyObject *kw);
PyObject *evpy_subscribe(PyObject *mod, PyObject *args, PyObject *kw);

/* --- zcopy.c ------------------------------------------------------------------ */

extern PyTypeObject evpy_MsgType;
extern PyTypeObject evpy_RunType;
extern PyTypeObject evpy_ResvType;

/* The Message for the message peeked at @ptr, @len on @ep. */
PyObject *evpy_msg_new(struct evpy_ep *ep, const void *ptr, size_t len);
/* An empty MessageRun for the messages peeked on @ep, which
 * evpy_run_add() adds in order (0, or -1 with MemoryError). */
PyObject *evpy_run_new(struct evpy_ep *ep);
int evpy_run_add(PyObject *run, const void *ptr, size_t len);
/* The Reservation for the room reserved on @ep (ep->resv_ptr, @len). */
PyObject *evpy_resv_new(struct evpy_ep *ep, size_t len);

/* Release the message(s) left peeked, if any.  BufferError if views of
 * them are still alive; the library's error if the release fails, -ESTALE
 * (latest: it was overwritten while peeked) only if @stale_error: a
 * release that the next receive makes does not report it.  0 or -1. */
int evpy_rx_settle(struct evpy_ep *ep, bool stale_error);

/* A call on @side begins: evpy_ep_enter()'s checks, and first the message
 * left peeked released (RX) or the abandoned reservation cancelled (TX).
 * 0, or -1 with an exception. */
int evpy_ep_begin(struct evpy_ep *ep, enum evpy_side side);

/* Before reserving or sending: 0 if nothing is reserved (an abandoned
 * reservation without views is cancelled first); -1 with an exception if
 * a reservation is in the way (OSError EBUSY: open; BufferError: views of
 * an abandoned one are alive). */
int evpy_resv_settle(struct evpy_ep *ep);

/* commit(): commit the open reservation with @len bytes (-1: all of it).
 * 0 or -1. */
int evpy_resv_commit(struct evpy_ep *ep, Py_ssize_t len);

/* --- listener.c ------------------------------------------------------------- */

extern PyTypeObject evpy_ListenerType;
PyObject *evpy_listen(PyObject *mod, PyObject *args, PyObject *kw);

/* --- module.c --------------------------------------------------------------- */

extern PyTypeObject *evpy_StatsType;
extern PyTypeObject *evpy_PeerCredType;
extern PyTypeObject *evpy_SubInfoType;
extern PyTypeObject *evpy_PubStatsType;

/* A struct sequence of @type from @n unsigned values.  NULL on error. */
PyObject *evpy_structseq(PyTypeObject *type, const uint64_t *v, Py_ssize_t n);

#endif
