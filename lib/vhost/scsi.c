/*
 * virtio-scsi over vhost-user (QEMU's vhost-user-scsi-pci): targets 0..7, as SPDK's, each a
 * SCSI device of lib/scsi whose LUN 0 is a bdev. Queue 0 is the control queue (task
 * management, asynchronous notification queries), queue 1 the event queue (hot-add and
 * removal of targets, capacity changes), queues 2.. the request queues.
 *
 * Threads. The controller's reactor (home) owns the SCSI devices: targets are added and
 * removed there, and the LUN events arrive there. Requests run on their queue's reactor and
 * submit to the device from there (lib/scsi takes tasks on any reactor). A target being
 * removed is first closed to new requests and waited for (its count of requests in flight
 * reaching zero), and only then destroyed on home - so no request ever reaches a device that
 * is going.
 *
 * The event queue's buffers are held until an event fills them; events without a buffer wait
 * in the queue's state, which lives as long as the queue (a stop and start while the front-end
 * sets the queue up loses none). Events are made on home and
 * sent by message to the event queue's reactor, only while the queue is started and no stop
 * has been asked for: messages from one reactor arrive in order, so such a message is
 * handled before the stop, and the queue is not freed before its stop is acknowledged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "mimo/scsi.h"
#include "mimo/vhost.h"
#include "scsi_req.h"
#include "vhost_internal.h"

#define SCSI_CTRLQ	   0u
#define SCSI_EVENTQ	   1u
#define SCSI_REQ_QUEUES	   16u
#define SCSI_MAX_EVENTS	   16u /* waiting for a buffer, per event queue; then "missed" */
#define SCSI_DRAIN_POLL_US 1000u

struct vhost_scsi;

struct scsi_tgt {
	struct vhost_scsi *vs;
	uint8_t num;
	/* Read by the queues' reactors; written on home. */
	_Atomic(struct mimo_scsi_dev *) dev;
	_Atomic bool removing;
	_Atomic uint32_t inflight; /* requests and TMFs inside the device */
	/* On home. */
	char *bdev_name;
	struct mimo_poller *drain;
	void (*removed)(void *arg);
	void *removed_arg;
};

struct vhost_scsi {
	struct mimo_reactor *home;
	struct vhost_ctrlr *c;
	struct scsi_tgt tgts[VSCSI_MAX_TARGETS];
	bool detaching;
	void (*detach_done)(void *arg);
	void *detach_arg;
};

struct scsi_req {
	struct mimo_scsi_task task;
	struct vhost_req *req;
	struct scsi_tgt *t;
	uint32_t used_len;
	struct iovec data[VHOST_MAX_IOVS];
};

/* The event queue's state, on its reactor. */
struct scsi_evq {
	STAILQ_HEAD(, vhost_req) bufs;
	struct virtio_scsi_event pending[SCSI_MAX_EVENTS];
	uint32_t npending;
	bool missed;
};

struct ev_msg {
	struct vhost_queue *q;
	struct virtio_scsi_event ev;
};

/* --- targets as the request path sees them ---------------------------------------------------- */

/* The target's device, counted in, or NULL when there is none or it is being removed. The
 * count goes up before the flag is read, and home sets the flag before it reads the count:
 * one of the two sees the other (sequentially consistent atomics). */
static struct mimo_scsi_dev *tgt_enter(struct scsi_tgt *t)
{
	struct mimo_scsi_dev *dev;

	atomic_fetch_add(&t->inflight, 1);
	if (atomic_load(&t->removing) || (dev = atomic_load(&t->dev)) == NULL) {
		atomic_fetch_sub(&t->inflight, 1);
		return NULL;
	}
	return dev;
}

static void tgt_leave(struct scsi_tgt *t)
{
	atomic_fetch_sub(&t->inflight, 1);
}

/* --- features and configuration ------------------------------------------------------------ */

static uint64_t scsi_features(void *dev)
{
	(void)dev;
	return (1ull << VIRTIO_SCSI_F_HOTPLUG) | (1ull << VIRTIO_SCSI_F_CHANGE);
}

static uint32_t scsi_max_queues(void *dev)
{
	(void)dev;
	return 2 + SCSI_REQ_QUEUES;
}

static void scsi_get_config(void *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct virtio_scsi_config cfg = {
		.num_queues = SCSI_REQ_QUEUES,
		/* Header, response and two splits at memory region ends: the rest is data. */
		.seg_max = VHOST_MAX_IOVS - 4,
		.max_sectors = 0xffff,
		.cmd_per_lun = 128,
		.event_info_size = sizeof(struct virtio_scsi_event),
		.sense_size = VIRTIO_SCSI_SENSE_SIZE,
		.cdb_size = VIRTIO_SCSI_CDB_SIZE,
		.max_channel = 0,
		.max_target = VSCSI_MAX_TARGETS - 1,
		.max_lun = MIMO_SCSI_MAX_LUNS - 1,
	};
	uint8_t space[VHOST_USER_MAX_CONFIG] = { 0 };

	(void)dev;
	memcpy(space, &cfg, sizeof(cfg));
	memcpy(buf, space + offset, len); /* offset + len <= 256: checked with the message */
}

/* --- request queues ------------------------------------------------------------------------- */

static void respond(struct vhost_req *req, const struct virtio_scsi_cmd_resp *resp,
		    uint32_t data_in)
{
	vscsi_iov_copy_in(req->iov + req->out_cnt, req->iovcnt - req->out_cnt, 0, resp,
			  sizeof(*resp));
	vhost_req_complete(req, (uint32_t)sizeof(*resp) + data_in);
}

static void respond_code(struct vhost_req *req, uint8_t response)
{
	struct virtio_scsi_cmd_resp resp = { .response = response };

	respond(req, &resp, 0);
}

static void task_done(struct mimo_scsi_task *task)
{
	struct scsi_req *r = task->cb_arg;
	struct virtio_scsi_cmd_resp resp = { 0 };
	uint32_t moved = task->data_transferred;

	tgt_leave(r->t);
	resp.status = task->status;
	resp.response = task->status == MIMO_SCSI_STATUS_TASK_ABORTED ? VIRTIO_SCSI_S_ABORTED
								      : VIRTIO_SCSI_S_OK;
	resp.sense_len = task->sense_len;
	memcpy(resp.sense, task->sense, MIMO_MIN((size_t)task->sense_len, sizeof(resp.sense)));
	/* As SPDK: the residual is what the buffers held beyond what moved. A command that
	 * wanted more than the buffers (an overflow) is not answered OVERRUN: Linux makes that
	 * a host error and retries a read that did return what fitted. */
	resp.resid = task->transfer_len > moved ? task->transfer_len - moved : 0;
	respond(r->req, &resp, task->dir == MIMO_SCSI_DIR_FROM_DEV ? moved : 0);
}

static void cmd_submit(struct vhost_scsi *vs, struct vhost_req *req)
{
	struct scsi_req *r = vhost_req_ctx(req);
	struct mimo_scsi_dev *dev;
	struct vscsi_cmd cmd;

	r->req = req;
	switch (vscsi_parse_cmd(req->iov, req->iovcnt, req->out_cnt, req->out_len, req->in_len,
				r->data, &cmd)) {
	case VSCSI_PARSE_OK:
		break;
	case VSCSI_PARSE_NO_RESP:
		VHOST_BAD("%s: queue %u: a request without room for its response", req->q->s->name,
			  req->q->index);
		vhost_req_complete(req, 0);
		return;
	case VSCSI_PARSE_BAD_HDR:
	case VSCSI_PARSE_BIDI:
		respond_code(req, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	if (!cmd.addr_ok || (dev = tgt_enter(&vs->tgts[cmd.target])) == NULL) {
		respond_code(req, VIRTIO_SCSI_S_BAD_TARGET);
		return;
	}
	r->t = &vs->tgts[cmd.target];
	mimo_scsi_task_init(&r->task);
	r->task.lun = cmd.lun;
	memcpy(r->task.cdb, cmd.hdr.cdb, sizeof(cmd.hdr.cdb));
	r->task.dir = cmd.dir == VSCSI_DIR_TO_DEV     ? MIMO_SCSI_DIR_TO_DEV
		      : cmd.dir == VSCSI_DIR_FROM_DEV ? MIMO_SCSI_DIR_FROM_DEV
						      : MIMO_SCSI_DIR_NONE;
	r->task.iovs = cmd.data;
	r->task.iovcnt = cmd.datacnt;
	r->task.transfer_len = cmd.data_len;
	r->task.tag = cmd.hdr.tag;
	r->task.cb = task_done;
	r->task.cb_arg = r;
	mimo_scsi_dev_submit(dev, &r->task);
}

/* --- control queue ------------------------------------------------------------------------------
 */

static void ctrl_respond(struct vhost_req *req, const void *resp, uint32_t len)
{
	uint32_t put = (uint32_t)vscsi_iov_copy_in(req->iov + req->out_cnt,
						   req->iovcnt - req->out_cnt, 0, resp, len);

	vhost_req_complete(req, put);
}

static void tmf_done(void *arg, enum mimo_scsi_tmf_response resp)
{
	struct scsi_req *r = arg;
	uint8_t code;

	tgt_leave(r->t);
	switch (resp) {
	case MIMO_SCSI_TMF_RESP_COMPLETE:
		code = VIRTIO_SCSI_S_FUNCTION_COMPLETE;
		break;
	case MIMO_SCSI_TMF_RESP_SUCCEEDED:
		code = VIRTIO_SCSI_S_FUNCTION_SUCCEEDED;
		break;
	case MIMO_SCSI_TMF_RESP_INCORRECT_LUN:
		code = VIRTIO_SCSI_S_INCORRECT_LUN;
		break;
	default:
		code = VIRTIO_SCSI_S_FUNCTION_REJECTED;
		break;
	}
	ctrl_respond(r->req, &code, 1);
}

static void tmf_submit(struct vhost_scsi *vs, struct vhost_req *req)
{
	struct scsi_req *r = vhost_req_ctx(req);
	struct virtio_scsi_ctrl_tmf_req tmf;
	struct mimo_scsi_dev *dev;
	enum mimo_scsi_tmf fn;
	uint8_t target, code;
	uint32_t lun;

	if (req->in_len < 1) {
		vhost_req_complete(req, 0);
		return;
	}
	if (vscsi_iov_copy_out(req->iov, req->out_cnt, 0, &tmf, sizeof(tmf)) != sizeof(tmf)) {
		code = VIRTIO_SCSI_S_FAILURE;
		ctrl_respond(req, &code, 1);
		return;
	}
	switch (tmf.subtype) {
	case VIRTIO_SCSI_T_TMF_ABORT_TASK:
		fn = MIMO_SCSI_TMF_ABORT_TASK;
		break;
	case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
		fn = MIMO_SCSI_TMF_ABORT_TASK_SET;
		break;
	case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
		fn = MIMO_SCSI_TMF_CLEAR_TASK_SET;
		break;
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
		fn = MIMO_SCSI_TMF_LOGICAL_UNIT_RESET;
		break;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
		/* One initiator per controller: the nexus is the target's every task. */
		fn = MIMO_SCSI_TMF_TARGET_RESET;
		break;
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
		fn = MIMO_SCSI_TMF_QUERY_TASK;
		break;
	default: /* CLEAR ACA (no ACA here), QUERY TASK SET, unknown */
		code = VIRTIO_SCSI_S_FUNCTION_REJECTED;
		ctrl_respond(req, &code, 1);
		return;
	}
	if (!vscsi_decode_lun(tmf.lun, &target, &lun) ||
	    (dev = tgt_enter(&vs->tgts[target])) == NULL) {
		code = VIRTIO_SCSI_S_BAD_TARGET;
		ctrl_respond(req, &code, 1);
		return;
	}
	r->req = req;
	r->t = &vs->tgts[target];
	if (mimo_scsi_dev_task_mgmt(dev, fn, lun, tmf.tag, tmf_done, r) != 0) {
		tgt_leave(r->t);
		code = VIRTIO_SCSI_S_FAILURE;
		ctrl_respond(req, &code, 1);
	}
}

static void ctrl_submit(struct vhost_scsi *vs, struct vhost_req *req)
{
	uint32_t type;

	if (vscsi_iov_copy_out(req->iov, req->out_cnt, 0, &type, sizeof(type)) != sizeof(type)) {
		VHOST_BAD("%s: control queue: a request without a type", req->q->s->name);
		vhost_req_complete(req, 0);
		return;
	}
	if (type == VIRTIO_SCSI_T_TMF) {
		tmf_submit(vs, req);
	} else if (type == VIRTIO_SCSI_T_AN_QUERY || type == VIRTIO_SCSI_T_AN_SUBSCRIBE) {
		/* No asynchronous notification class is supported: none reported, none taken. */
		struct virtio_scsi_ctrl_an_resp resp = { .event_actual = 0,
							 .response = VIRTIO_SCSI_S_OK };

		ctrl_respond(req, &resp, sizeof(resp));
	} else {
		VHOST_BAD("%s: control queue: unknown request type %u", req->q->s->name, type);
		vhost_req_complete(req, 0);
	}
}

/* --- event queue ---------------------------------------------------------------------------------
 */

static struct scsi_evq *evq_of(struct vhost_queue *q)
{
	struct scsi_evq *e = q->dev_ctx;

	if (e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
		STAILQ_INIT(&e->bufs);
		q->dev_ctx = e;
	}
	return e;
}

static void fill_event(struct vhost_req *req, const struct virtio_scsi_event *ev)
{
	vscsi_iov_copy_in(req->iov + req->out_cnt, req->iovcnt - req->out_cnt, 0, ev, sizeof(*ev));
	vhost_req_complete(req, sizeof(*ev));
}

static void ev_submit(struct vhost_req *req)
{
	struct scsi_evq *e = evq_of(req->q);

	if (req->in_len < sizeof(struct virtio_scsi_event) || e == NULL) {
		if (e != NULL)
			VHOST_BAD("%s: event queue: a buffer of %u bytes (16 needed)",
				  req->q->s->name, req->in_len);
		vhost_req_complete(req, 0);
		return;
	}
	if (e->npending > 0) {
		fill_event(req, &e->pending[0]);
		memmove(&e->pending[0], &e->pending[1], --e->npending * sizeof(e->pending[0]));
	} else if (e->missed) {
		/* Events were dropped for want of buffers: the driver rescans its bus. */
		struct virtio_scsi_event ev = { .event = VIRTIO_SCSI_T_NO_EVENT |
							 VIRTIO_SCSI_T_EVENTS_MISSED };

		e->missed = false;
		fill_event(req, &ev);
	} else {
		STAILQ_INSERT_TAIL(&e->bufs, req, link);
	}
}

static void ev_here(void *arg)
{
	struct ev_msg *m = arg;
	struct vhost_queue *q = m->q;
	struct scsi_evq *e = evq_of(q);
	struct vhost_req *req;

	if (e == NULL) {
		free(m);
		return;
	}
	if ((req = STAILQ_FIRST(&e->bufs)) != NULL) {
		STAILQ_REMOVE_HEAD(&e->bufs, link);
		fill_event(req, &m->ev);
	} else if (e->npending < SCSI_MAX_EVENTS) {
		e->pending[e->npending++] = m->ev;
	} else {
		e->missed = true;
	}
	free(m);
}

/* On home: the event to every session that negotiated feature and serves its event queue. */
static void broadcast(struct vhost_scsi *vs, uint32_t feature, uint32_t event, uint8_t target,
		      uint32_t reason)
{
	struct vhost_session *s;

	if (vs->c == NULL)
		return;
	TAILQ_FOREACH(s, &vs->c->sessions, link)
	{
		struct vhost_queue *q = s->queues[SCSI_EVENTQ];
		struct ev_msg *m;

		if (!(s->features & (1ull << feature)) || q == NULL || !q->started ||
		    q->stop_done != NULL)
			continue;
		if ((m = calloc(1, sizeof(*m))) == NULL)
			continue;
		m->q = q;
		m->ev.event = event;
		m->ev.lun[0] = 1;
		m->ev.lun[1] = target;
		m->ev.reason = reason;
		if (mimo_reactor_post(q->reactor, ev_here, m) != 0)
			free(m);
	}
}

static void scsi_queue_stopping(void *dev, struct vhost_queue *q)
{
	struct scsi_evq *e = q->dev_ctx;
	struct vhost_req *req;

	(void)dev;
	if (q->index != SCSI_EVENTQ || e == NULL)
		return;
	/* Held buffers go back as "no event": the driver handles that as nothing and posts
	 * the buffer again, whereas a zero length would have it read its old contents. */
	while ((req = STAILQ_FIRST(&e->bufs)) != NULL) {
		struct virtio_scsi_event ev = { .event = VIRTIO_SCSI_T_NO_EVENT };

		STAILQ_REMOVE_HEAD(&e->bufs, link);
		fill_event(req, &ev);
	}
}

static void scsi_submit(void *dev, struct vhost_req *req)
{
	struct vhost_scsi *vs = dev;

	if (mimo_likely(req->q->index > SCSI_EVENTQ))
		cmd_submit(vs, req);
	else if (req->q->index == SCSI_CTRLQ)
		ctrl_submit(vs, req);
	else
		ev_submit(req);
}

/* --- targets: added and removed on home ------------------------------------------------------ */

static void tgt_destroyed(void *arg)
{
	struct scsi_tgt *t = arg;
	struct vhost_scsi *vs = t->vs;
	void (*cb)(void *arg) = t->removed;
	void *cb_arg = t->removed_arg;

	MIMO_INFO(COMP, "%s: target %u (bdev %s) removed", vs->c ? vs->c->name : "?", t->num,
		  t->bdev_name);
	free(t->bdev_name);
	t->bdev_name = NULL;
	t->removed = NULL;
	atomic_store(&t->dev, NULL);
	atomic_store(&t->removing, false);
	if (cb != NULL)
		cb(cb_arg);
	if (vs->detaching) {
		for (uint32_t i = 0; i < VSCSI_MAX_TARGETS; i++)
			if (atomic_load(&vs->tgts[i].dev) != NULL)
				return;
		vs->detaching = false;
		vs->detach_done(vs->detach_arg);
	}
}

static int drain_poll(void *arg)
{
	struct scsi_tgt *t = arg;

	if (atomic_load(&t->inflight) != 0)
		return 0;
	mimo_poller_unregister(&t->drain);
	/* Nothing more reaches the device: the destroy drains nothing of ours. */
	mimo_scsi_dev_destroy(atomic_load(&t->dev), tgt_destroyed, t);
	return 1;
}

/* Close the target to new requests, tell the guests, destroy the device once its requests
 * have completed; cb(arg) then. */
static int tgt_remove(struct scsi_tgt *t, void (*cb)(void *arg), void *arg)
{
	if (atomic_load(&t->dev) == NULL)
		return -ENODEV;
	if (atomic_load(&t->removing))
		return -EBUSY;
	atomic_store(&t->removing, true);
	t->removed = cb;
	t->removed_arg = arg;
	broadcast(t->vs, VIRTIO_SCSI_F_HOTPLUG, VIRTIO_SCSI_T_TRANSPORT_RESET, t->num,
		  VIRTIO_SCSI_EVT_RESET_REMOVED);
	t->drain = mimo_poller_register(drain_poll, t, SCSI_DRAIN_POLL_US);
	if (t->drain == NULL) {
		MIMO_ERR(COMP, "cannot wait for target %u's requests: out of memory", t->num);
		atomic_store(&t->removing, false);
		t->removed = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void on_lun_event(void *ctx, struct mimo_scsi_dev *dev, uint32_t lun,
			 enum mimo_scsi_lun_event event)
{
	struct scsi_tgt *t = ctx;

	(void)dev;
	if (event == MIMO_SCSI_LUN_EVENT_RESIZED) {
		/* CAPACITY DATA HAS CHANGED: Linux reads the capacity again. */
		broadcast(t->vs, VIRTIO_SCSI_F_CHANGE, VIRTIO_SCSI_T_PARAM_CHANGE, t->num,
			  0x2a | 0x09 << 8);
	} else if (event == MIMO_SCSI_LUN_EVENT_REMOVED && lun == 0) {
		/* The bdev went: a target without its LUN 0 goes too, as in SPDK. */
		MIMO_WARN(COMP, "bdev %s of target %u is gone: the target is removed", t->bdev_name,
			  t->num);
		tgt_remove(t, NULL, NULL);
	}
}

static struct vhost_scsi *scsi_of(const char *ctrlr, char *err, size_t err_len)
{
	struct vhost_ctrlr *c = vhost_ctrlr_find(ctrlr);

	if (c == NULL) {
		snprintf(err, err_len, "no controller %s", ctrlr);
		return NULL;
	}
	if (strcmp(c->ops->type, "scsi") != 0) {
		snprintf(err, err_len, "controller %s is not a vhost-user-scsi controller", ctrlr);
		return NULL;
	}
	return c->dev;
}

MIMO_EXPORT int mimo_vhost_scsi_add_target(const char *ctrlr, int32_t num, const char *bdev,
					   char *err, size_t err_len)
{
	struct vhost_scsi *vs = scsi_of(ctrlr, err, err_len);
	const char *names[1] = { bdev };
	struct mimo_scsi_dev *dev;
	struct scsi_tgt *t;
	char name[MIMO_SCSI_DEV_NAME_MAX + 1];
	int rc;

	if (vs == NULL)
		return -ENODEV;
	if (num == -1) {
		for (num = 0; num < (int32_t)VSCSI_MAX_TARGETS; num++)
			if (atomic_load(&vs->tgts[num].dev) == NULL)
				break;
		if (num == VSCSI_MAX_TARGETS) {
			snprintf(err, err_len, "controller %s has %u targets already", ctrlr,
				 VSCSI_MAX_TARGETS);
			return -ENOSPC;
		}
	} else if (num < 0 || num >= (int32_t)VSCSI_MAX_TARGETS) {
		snprintf(err, err_len, "target %d: 0 to %u, or -1 for the first free", num,
			 VSCSI_MAX_TARGETS - 1);
		return -EINVAL;
	}
	t = &vs->tgts[num];
	if (atomic_load(&t->dev) != NULL) {
		snprintf(err, err_len, "target %d of %s %s", num, ctrlr,
			 atomic_load(&t->removing) ? "is being removed" : "exists");
		return atomic_load(&t->removing) ? -EBUSY : -EEXIST;
	}
	/* SCSI device names are unique in the process: the controller's name makes them so
	 * (SPDK calls them all "Target N"; that is the target_name shown). */
	snprintf(name, sizeof(name), "%s/Target %d", ctrlr, num);
	rc = mimo_scsi_dev_create(name, names, NULL, 1, on_lun_event, t, &dev);
	if (rc != 0) {
		snprintf(err, err_len, "bdev %s: %s", bdev,
			 rc == -ENODEV	? "no such bdev"
			 : rc == -EBUSY ? "being deleted"
					: strerror(-rc));
		return rc;
	}
	if ((t->bdev_name = strdup(bdev)) == NULL) {
		mimo_scsi_dev_destroy(dev, NULL, NULL);
		return -ENOMEM;
	}
	atomic_store(&t->dev, dev);
	MIMO_INFO(COMP, "%s: target %d over bdev %s", ctrlr, num, bdev);
	broadcast(vs, VIRTIO_SCSI_F_HOTPLUG, VIRTIO_SCSI_T_TRANSPORT_RESET, (uint8_t)num,
		  VIRTIO_SCSI_EVT_RESET_RESCAN);
	return num;
}

MIMO_EXPORT int mimo_vhost_scsi_remove_target(const char *ctrlr, uint32_t num,
					      void (*cb)(void *arg), void *arg, char *err,
					      size_t err_len)
{
	struct vhost_scsi *vs = scsi_of(ctrlr, err, err_len);
	int rc;

	if (vs == NULL)
		return -ENODEV;
	if (num >= VSCSI_MAX_TARGETS) {
		snprintf(err, err_len, "target %u: 0 to %u", num, VSCSI_MAX_TARGETS - 1);
		return -EINVAL;
	}
	rc = tgt_remove(&vs->tgts[num], cb, arg);
	if (rc == -ENODEV)
		snprintf(err, err_len, "controller %s has no target %u", ctrlr, num);
	else if (rc == -EBUSY)
		snprintf(err, err_len, "target %u of %s is being removed", num, ctrlr);
	return rc;
}

/* --- letting go, JSON ------------------------------------------------------------------------ */

static void scsi_detach(void *dev, void (*done)(void *arg), void *arg)
{
	struct vhost_scsi *vs = dev;
	bool any = false;

	vs->detach_done = done;
	vs->detach_arg = arg;
	vs->detaching = true;
	for (uint32_t i = 0; i < VSCSI_MAX_TARGETS; i++) {
		struct scsi_tgt *t = &vs->tgts[i];

		if (atomic_load(&t->dev) == NULL)
			continue;
		any = true;
		if (!atomic_load(&t->removing))
			tgt_remove(t, NULL, NULL);
	}
	if (!any) {
		vs->detaching = false;
		done(arg);
	}
}

static json_t *scsi_info_json(void *dev)
{
	struct vhost_scsi *vs = dev;
	json_t *arr = json_array();

	for (uint32_t i = 0; i < VSCSI_MAX_TARGETS; i++) {
		struct mimo_scsi_dev *sd = atomic_load(&vs->tgts[i].dev);
		char name[32];

		if (sd == NULL || atomic_load(&vs->tgts[i].removing))
			continue;
		snprintf(name, sizeof(name), "Target %u", i);
		json_array_append_new(arr, json_pack("{s:i, s:i, s:i, s:s, s:o}", "scsi_dev_num",
						     (int)i, "target_num", (int)i, "id",
						     mimo_scsi_dev_get_id(sd), "target_name", name,
						     "luns", mimo_scsi_dev_luns_json(sd)));
	}
	return json_pack("{s:o}", "scsi", arr);
}

static void scsi_config_json(void *dev, struct vhost_ctrlr *c, json_t *arr)
{
	struct vhost_scsi *vs = dev;
	char mask[32];

	snprintf(mask, sizeof(mask), "0x%llx", (unsigned long long)c->cpumask);
	/* One held back (delay) and not started yet is saved so: replayed, it waits too. */
	json_array_append_new(
		arr, c->listen_fd >= 0 ? json_pack("{s:s, s:{s:s, s:s}}", "method",
						   "vhost_create_scsi_controller", "params",
						   "ctrlr", c->name, "cpumask", mask)
				       : json_pack("{s:s, s:{s:s, s:s, s:b}}", "method",
						   "vhost_create_scsi_controller", "params",
						   "ctrlr", c->name, "cpumask", mask, "delay", 1));
	for (uint32_t i = 0; i < VSCSI_MAX_TARGETS; i++) {
		struct scsi_tgt *t = &vs->tgts[i];

		if (atomic_load(&t->dev) == NULL || atomic_load(&t->removing))
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:{s:s, s:i, s:s}}", "method",
						     "vhost_scsi_controller_add_target", "params",
						     "ctrlr", c->name, "scsi_target_num", (int)i,
						     "bdev_name", t->bdev_name));
	}
}

static void scsi_free(void *dev)
{
	free(dev);
}

static const struct vhost_dev_ops g_scsi_ops = {
	.type = "scsi",
	.req_ctx_size = sizeof(struct scsi_req),
	.features = scsi_features,
	.max_queues = scsi_max_queues,
	.get_config = scsi_get_config,
	.submit = scsi_submit,
	.queue_stopping = scsi_queue_stopping,
	.info_json = scsi_info_json,
	.config_json = scsi_config_json,
	.detach = scsi_detach,
	.free = scsi_free,
};

MIMO_EXPORT int mimo_vhost_scsi_create(const char *name, const char *cpumask, bool delay, char *err,
				       size_t err_len)
{
	struct vhost_scsi *vs = calloc(1, sizeof(*vs));
	struct vhost_ctrlr *c;
	int rc;

	if (vs == NULL)
		return -ENOMEM;
	vs->home = mimo_reactor_current();
	for (uint32_t i = 0; i < VSCSI_MAX_TARGETS; i++) {
		vs->tgts[i].vs = vs;
		vs->tgts[i].num = (uint8_t)i;
	}
	rc = vhost_ctrlr_create(name, cpumask, &g_scsi_ops, vs, delay, &c, err, err_len);
	if (rc != 0) {
		free(vs);
		return rc;
	}
	vs->c = c;
	vhost_emit("vhost_controller_created", name,
		   json_pack("{s:s, s:s, s:s}", "ctrlr", name, "socket", c->socket_path, "type",
			     "scsi"));
	return 0;
}

MIMO_EXPORT int mimo_vhost_scsi_start(const char *name, char *err, size_t err_len)
{
	struct vhost_scsi *vs = scsi_of(name, err, err_len);

	return vs == NULL ? (vhost_ctrlr_find(name) == NULL ? -ENODEV : -EINVAL)
			  : vhost_ctrlr_start(vs->c, err, err_len);
}

MIMO_EXPORT json_t *mimo_vhost_scsi_config_json(void)
{
	return vhost_ctrlr_config_json("scsi");
}
