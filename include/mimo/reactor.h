/*
 * mimo/reactor.h - one event loop per core, the execution model every mimo daemon runs on.
 *
 * A reactor is a thread pinned to one core. Each turn of its loop it runs the messages other
 * threads sent it, its active pollers, its due timers, and the callbacks of its ready file
 * descriptors. It spins while any of them found work within the last idle_spin_us and sleeps
 * in epoll otherwise, so an idle daemon costs no CPU and a busy one pays no wake-ups; with
 * poll_mode it never sleeps (SPDK's behaviour).
 *
 * Objects belong to the reactor that created them and are touched only there; work for
 * another reactor is sent to it as a message. Functions documented "on a reactor" must be
 * called from a reactor thread and act on that reactor (mimo_reactor_current()).
 *
 * io_devices and io_channels (as in SPDK): a module registers an io_device; each reactor that
 * uses it gets its own channel (per-reactor state such as an io_uring), created on first
 * mimo_get_io_channel() and destroyed when its last reference is put.
 *
 * Errors: 0 or a negative errno, objects through an out-parameter; the calls that can fail
 * only for want of memory (pollers, channels) return the object or NULL, as SPDK's.
 */
#ifndef MIMO_REACTOR_H
#define MIMO_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mimo_reactor;
struct mimo_poller;
struct mimo_fd_watch;
struct mimo_io_channel;

typedef void (*mimo_msg_fn)(void *arg);
/*
 * A poller returns > 0 when it did work, 0 when it found nothing to do. A reactor that finds
 * no work for idle_spin_us sleeps until a message, a timer or a watched fd wakes it - so a
 * poller waiting for completions that nothing of those will announce (io_uring without an
 * eventfd, a peer's shared memory) must return > 0 while any are outstanding.
 */
typedef int (*mimo_poller_fn)(void *arg);
/* events: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP... as returned by epoll. */
typedef void (*mimo_fd_fn)(void *arg, uint32_t events);

struct mimo_reactor_opts {
	size_t opts_size;	/* sizeof(struct mimo_reactor_opts) */
	uint64_t core_mask;	/* one reactor per set bit; bit n = CPU n (default 0x1) */
	bool poll_mode;		/* never sleep */
	uint32_t idle_spin_us;	/* keep spinning this long after the last work (default 200) */
	uint32_t msg_ring_size; /* messages queued per reactor (default 16384) */
};

void mimo_reactor_opts_init(struct mimo_reactor_opts *opts);

/* Parse an SPDK core mask: "0x3", "3", or a list "[0,2-3]". Returns 0 or -EINVAL. */
int mimo_reactor_parse_cpumask(const char *text, uint64_t *mask);

/* Create the reactors and start their threads. Returns 0 or a negative errno. */
int mimo_reactors_start(const struct mimo_reactor_opts *opts);
/* Ask every reactor to stop, wait for them, free them. Pollers and channels still registered
 * are released without their owners' consent: stop users first. Not from a reactor. */
void mimo_reactors_stop(void);

uint32_t mimo_reactor_count(void);
struct mimo_reactor *mimo_reactor_get(uint32_t index);
/* The reactor the calling thread runs, or NULL. */
struct mimo_reactor *mimo_reactor_current(void);
uint32_t mimo_reactor_index(const struct mimo_reactor *r);
uint32_t mimo_reactor_core(const struct mimo_reactor *r);

/*
 * Run fn(arg) on reactor r, from any thread (lock-free). Messages from one sender to one
 * reactor run in the order sent. Returns 0, or -EAGAIN when r's message ring is full.
 */
int mimo_reactor_send_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg);

/*
 * Run fn(arg) on reactor r, never failing for want of room in r's ring: from a reactor, a
 * message that does not fit waits in the calling reactor's overflow list, which its loop
 * sends on (in the order posted) as room appears - so two reactors that fill each other's
 * rings keep draining their own instead of spinning on a send; from any other thread it waits
 * for room. Messages from one sender to one reactor still run in the order posted. Returns 0
 * or -ENOMEM.
 */
int mimo_reactor_post(struct mimo_reactor *r, mimo_msg_fn fn, void *arg);

/*
 * Run fn(arg) on every reactor in turn (index order), then done(arg) on the reactor that
 * called this. On a reactor. Returns 0 or -ENOMEM.
 */
int mimo_for_each_reactor(mimo_msg_fn fn, void *arg, mimo_msg_fn done);

/*
 * Pollers, on a reactor. period_us 0: run every turn of the loop (an active poller). Otherwise
 * run about every period_us (a timer). Returns NULL on allocation failure.
 * Unregistering from inside the poller itself is allowed; *p is set to NULL.
 */
struct mimo_poller *mimo_poller_register_named(mimo_poller_fn fn, void *arg, uint64_t period_us,
					       const char *name);
/*
 * An active poller that runs after every other active poller of the turn: for work that
 * gathers what the others produced, such as sending the responses completions queued, so
 * they leave in the same turn instead of after another pass through epoll.
 */
struct mimo_poller *mimo_poller_register_late_named(mimo_poller_fn fn, void *arg, const char *name);
/* A poller is named after its function, as SPDK_POLLER_REGISTER names it: the name is what
 * thread_get_pollers and mimo_top show. name must outlive the poller (a string literal). */
#define mimo_poller_register(fn, arg, period_us) mimo_poller_register_named(fn, arg, period_us, #fn)
#define mimo_poller_register_late(fn, arg)	 mimo_poller_register_late_named(fn, arg, #fn)
void mimo_poller_unregister(struct mimo_poller **p);

/* Watch a file descriptor on the current reactor (edge-triggered if events has EPOLLET).
 * Returns 0 with *out set, -EPERM off a reactor, -ENOMEM, or epoll_ctl's error. */
int mimo_fd_watch_add(int fd, uint32_t events, mimo_fd_fn fn, void *arg,
		      struct mimo_fd_watch **out);
int mimo_fd_watch_modify(struct mimo_fd_watch *w, uint32_t events);
/*
 * Report no events for about usec, then watch again for the events last asked for (a
 * modify while paused is applied at the end). For a listening socket the process cannot
 * serve for now - accept() failed with EMFILE - so that the reactor sleeps instead of
 * spinning on a socket that stays readable. Pausing a paused watch restarts the pause.
 * Returns 0 or a negative errno.
 */
int mimo_fd_watch_pause(struct mimo_fd_watch *w, uint64_t usec);
/* Stop watching (the fd itself is not closed). Safe from inside the watch's callback. */
void mimo_fd_watch_remove(struct mimo_fd_watch **w);

/*
 * io_devices and channels.
 * create_cb runs on the reactor that first asks for a channel, with ctx = the channel's
 * zeroed context area of ctx_size bytes; destroy_cb when its last reference is put.
 */
typedef int (*mimo_io_channel_create_cb)(void *io_device, void *ctx);
typedef void (*mimo_io_channel_destroy_cb)(void *io_device, void *ctx);

void mimo_io_device_register(void *io_device, mimo_io_channel_create_cb create_cb,
			     mimo_io_channel_destroy_cb destroy_cb, size_t ctx_size,
			     const char *name);
/* Forget io_device once its channels are gone; done(arg) then runs on the calling reactor
 * (or at once, on the calling thread, when no channel exists). */
void mimo_io_device_unregister(void *io_device, mimo_msg_fn done, void *arg);

/* On a reactor: this reactor's channel for io_device (created if needed), or NULL. */
struct mimo_io_channel *mimo_get_io_channel(void *io_device);
void mimo_put_io_channel(struct mimo_io_channel *ch);
void *mimo_io_channel_get_ctx(struct mimo_io_channel *ch);
void *mimo_io_channel_get_io_device(struct mimo_io_channel *ch);
struct mimo_reactor *mimo_io_channel_get_reactor(struct mimo_io_channel *ch);
struct mimo_io_channel *mimo_io_channel_from_ctx(void *ctx);

/*
 * Run fn(channel, arg) on the reactor of each channel of io_device in turn, then done(arg,
 * status) on the calling reactor. fn returns 0 to continue, non-zero to stop early (that
 * value becomes status). On a reactor. Returns 0 or -ENOMEM.
 */
typedef int (*mimo_channel_iter_fn)(struct mimo_io_channel *ch, void *arg);
typedef void (*mimo_channel_iter_done)(void *arg, int status);
int mimo_for_each_channel(void *io_device, mimo_channel_iter_fn fn, void *arg,
			  mimo_channel_iter_done done);

struct mimo_reactor_stats {
	uint64_t busy_ticks; /* ticks spent in turns that did work */
	uint64_t idle_ticks;
	uint64_t msgs;	 /* messages run */
	uint64_t sleeps; /* times the reactor went to sleep */
};
void mimo_reactor_get_stats(struct mimo_reactor *r, struct mimo_reactor_stats *st);

/*
 * Introspection, for SPDK's framework_get_reactors and thread_get_* methods. The thread id, the
 * tick at which the reactor started and its mode may be read from any thread once the reactors
 * started; pollers and channels belong to their reactor, so their walks run on it
 * (mimo_reactor_current(), e.g. from mimo_for_each_reactor) and visit that reactor's own.
 */
int mimo_reactor_tid(const struct mimo_reactor *r); /* the Linux thread id (gettid) */
uint64_t mimo_reactor_start_ticks(const struct mimo_reactor *r);
bool mimo_reactor_poll_mode(const struct mimo_reactor *r); /* never sleeps (--poll) */

struct mimo_poller_info {
	const char *name;
	uint64_t id;	       /* unique on its reactor, from 1, in registration order */
	uint64_t period_ticks; /* 0: active (runs every turn) */
	uint64_t run_count;    /* times it ran */
	uint64_t busy_count;   /* of those, times it returned > 0 (found work) */
};
typedef void (*mimo_poller_info_fn)(const struct mimo_poller_info *info, void *arg);
/* On a reactor: fn for each live poller of this reactor, active ones (in running order) then
 * timed ones (soonest first). */
void mimo_reactor_foreach_poller(mimo_poller_info_fn fn, void *arg);

/* On a reactor: fn for each io_channel this reactor holds: its io_device's name, references. */
typedef void (*mimo_channel_info_fn)(const char *io_device_name, uint32_t refs, void *arg);
void mimo_reactor_foreach_channel(mimo_channel_info_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_REACTOR_H */
