/* SPDX-License-Identifier: MIT */
/*
 * evpy.h: the CPython extension module evshm._evshm.  It sits on the public
 * API (evshm.h) only.  Files, one job each:
 *   module.c    the module: types, constants, the library version check;
 *   call.c      arguments, timeouts, errors, and the blocking-call loop
 *               (GIL released, cut into slices for signal handlers);
 *   opts.c      keyword options -> struct evshm_opts, through one table;
 *   listener.c  evshm.Listener, evshm.listen();
 *   chan.c      evshm.Channel, evshm.connect();
 *   zcopy.c     evshm.Message (peek) and evshm.Reservation (reserve): the
 *               buffer exporters of the zero-copy calls.
 *
 * Lifetime rule (zcopy.c and chan.c): the channel's shared memory is mapped
 * for as long as a call on it is under way or a buffer exported from it is
 * alive.  close() marks the channel closed at once; evshm_close(), which
 * unmaps, runs when the last of those ends (evpy_chan_unpin()).
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
 * @filename (may be NULL) becomes the exception's filename.
 */
PyObject *evpy_raise(int err, PyObject *filename);

/* OSError(errnum, formatted text), as the errno's subclass; NULL. */
PyObject *evpy_oserror(int errnum, const char *fmt, ...);

/* ValueError("I/O operation on closed <what>"), NULL. */
PyObject *evpy_closed(const char *what);

/* --- opts.c ---------------------------------------------------------------- */

/* Which calls take an option. */
enum { EVPY_LISTEN = 1, EVPY_CONNECT = 2 };

/* What authorize= needs while a listener lives or a connect runs. */
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

/* --- async delegation (module.c) -------------------------------------------- */

/* Call evshm._aio.@fname(*args): a coroutine. */
PyObject *evpy_aio(const char *fname, PyObject *self, PyObject *arg);

/* --- chan.c ----------------------------------------------------------------- */

struct evpy_msg;
struct evpy_resv;

/* What a reservation is to the send side (zcopy.c). */
enum evpy_resv_state {
	EVPY_RESV_NONE,      /* nothing reserved */
	EVPY_RESV_OPEN,      /* reserved, its with-block runs */
	EVPY_RESV_ABANDONED, /* reserved, never to be committed (see zcopy.c) */
};

struct evpy_chan {
	PyObject_HEAD
	struct evshm_chan *c; /* NULL once evshm_close() has run */
	bool closed;          /* close() called: every call says so */
	bool rx_busy, tx_busy; /* a call on that side is under way */
	unsigned pins;        /* calls under way + exported buffers */
	/* Receive side: a message peeked and not released yet.  msg is its
	 * Message object (borrowed: it holds a reference to us), NULL if
	 * that died first. */
	bool peeked;
	struct evpy_msg *msg;
	/* Send side: the open reservation (see zcopy.c). */
	enum evpy_resv_state resv_state;
	void *resv_ptr;
	size_t resv_len;
	struct evpy_resv *resv; /* borrowed, like msg */
	PyObject *weakrefs;
};

extern PyTypeObject evpy_ChanType;

/* A channel object for @c (which it owns from then on); NULL on error
 * (and @c is closed). */
PyObject *evpy_chan_new(struct evshm_chan *c);

/* A buffer or a call needs the mapping / no longer needs it.  The last
 * unpin of a closed channel closes it. */
void evpy_chan_pin(struct evpy_chan *ch);
void evpy_chan_unpin(struct evpy_chan *ch);

/* Release the message left peeked, if any.  BufferError if views of it
 * are still alive. 0 or -1. */
int evpy_rx_settle(struct evpy_chan *ch);

/* --- zcopy.c ---------------------------------------------------------------- */

extern PyTypeObject evpy_MsgType;
extern PyTypeObject evpy_ResvType;

/* The Message for the message peeked at @ptr, @len on @ch. */
PyObject *evpy_msg_new(struct evpy_chan *ch, const void *ptr, size_t len);
/* How many buffers of it are exported (views alive). */
Py_ssize_t evpy_msg_exports(const struct evpy_msg *m);
/* It is no longer the channel's peeked message. */
void evpy_msg_detach(struct evpy_msg *m);
/* The Reservation for the room reserved on @ch (ch->resv_ptr, @len). */
PyObject *evpy_resv_new(struct evpy_chan *ch, size_t len);

/* Before reserving or sending: 0 if nothing is reserved; 1 if an
 * abandoned reservation can take @len bytes (*ptr points at it; it is the
 * caller's to fill and commit); -1 with an exception if a reservation is
 * in the way. */
int evpy_resv_reuse(struct evpy_chan *ch, size_t len, void **ptr);

/* Channel.commit(): commit the open reservation with @len bytes (-1: all
 * of it).  0 or -1. */
int evpy_resv_commit(struct evpy_chan *ch, Py_ssize_t len);


/* --- listener.c ------------------------------------------------------------- */

extern PyTypeObject evpy_ListenerType;
PyObject *evpy_listen(PyObject *mod, PyObject *args, PyObject *kw);

/* --- chan.c, module level --------------------------------------------------- */

PyObject *evpy_connect(PyObject *mod, PyObject *args, PyObject *kw);

/* --- module.c --------------------------------------------------------------- */

extern PyTypeObject *evpy_StatsType;
extern PyTypeObject *evpy_PeerCredType;

#endif
