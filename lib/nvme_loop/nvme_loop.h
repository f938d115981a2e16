/*
 * The loop transport's meeting point (as the Linux kernel's nvme-loop): an NVMe-oF host and
 * target in one process, without sockets. A target's loop transport registers each of its
 * listeners here by name; the initiator opens a queue on one by that name (the trid's
 * traddr) and from then on talks to the target's end of it only through the queue's ops.
 *
 * Threads: the host uses a queue from one thread at a time, any thread; the target's end
 * moves each call over to the reactor that serves the queue. The target never touches the
 * host's buffers: submit copies the command's data in, reap hands it out, so a host may
 * release a queue (and free its buffers) while commands are still running in the target.
 */
#ifndef MIMO_NVME_LOOP_H
#define MIMO_NVME_LOOP_H

#include <stdint.h>

#include "mimo/nvme_spec.h"

struct nvme_loop_queue;

/* One completion: slot as submitted, data (len bytes, controller to host) valid only during
 * the call. */
typedef void (*nvme_loop_reap_cb)(void *arg, uint16_t slot, const struct mimo_nvme_cpl *cpl,
				  const void *data, uint32_t len);

struct nvme_loop_queue_ops {
	/* Send slot's command. len: the data the command moves (its SGL length); data: the
	 * bytes for the controller (copied before this returns), NULL when the data moves the
	 * other way. Returns 0, -EINVAL (slot out of range), -ENOMEM. */
	int (*submit)(struct nvme_loop_queue *q, uint16_t slot, const struct mimo_nvme_cmd *cmd,
		      const void *data, uint32_t len);
	/* Hand every completion that arrived to cb. Returns how many, or -ECONNRESET once the
	 * target closed the queue (after handing out what came before). */
	int (*reap)(struct nvme_loop_queue *q, nvme_loop_reap_cb cb, void *arg);
	/* Readable while reap has something to hand out (for poll; the queue's, not to close). */
	int (*fd)(struct nvme_loop_queue *q);
	/* The host is done with the queue: the target closes its end. q is gone after this. */
	void (*release)(struct nvme_loop_queue *q);
};

struct nvme_loop_queue {
	const struct nvme_loop_queue_ops *ops;
};

/* The target's side: a new queue of slots command slots (from any thread, under the
 * registry's lock). Returns 0, -ECONNREFUSED (the transport is going), -ENOMEM. */
typedef int (*nvme_loop_queue_create_fn)(void *port, uint32_t slots, struct nvme_loop_queue **q);

/* A listener named name (unique in the process). Returns 0, -EADDRINUSE, -ENOMEM. */
int nvme_loop_port_register(const char *name, nvme_loop_queue_create_fn create, void *port);
/* No new queue reaches port once this returns. */
void nvme_loop_port_unregister(void *port);

/* The host's side: a queue on the listener named name. Returns 0, -ECONNREFUSED (no such
 * listener, or it is going), -ENOMEM. */
int nvme_loop_queue_open(const char *name, uint32_t slots, struct nvme_loop_queue **q);

#endif
