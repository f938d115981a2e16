/*
 * What the SCSI unit tests share: reactors, malloc bdevs, a device, and commands submitted on
 * a chosen reactor while the test thread waits for their completion.
 */
#ifndef MIMO_SCSI_UT_H
#define MIMO_SCSI_UT_H

#include <errno.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_error.h"
#include "bdev_malloc.h"
#include "bdev_null.h"
#include "mimo/bdev.h"
#include "mimo/bdev_module.h"
#include "mimo/jsonrpc.h"
#include "mimo/reactor.h"
#include "mimo/scsi.h"

/* --- running things on a reactor ---------------------------------------------------------- */

static __attribute__((unused)) sem_t g_sem;

static __attribute__((unused)) void ut_wait(sem_t *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60; /* a hang fails the test instead of the run; no timing is asserted */
	assert_int_equal(sem_timedwait(s, &ts), 0);
}

struct ut_call {
	void (*fn)(void *arg);
	void *arg;
	sem_t *sem;
};

static __attribute__((unused)) void ut_call_msg(void *arg)
{
	struct ut_call *c = arg;

	c->fn(c->arg);
	sem_post(c->sem);
}

/* Run fn(arg) on reactor r and wait for it. */
static __attribute__((unused)) void ut_on(uint32_t r, void (*fn)(void *arg), void *arg)
{
	sem_t s;
	struct ut_call c = { fn, arg, &s };

	sem_init(&s, 0, 0);
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(r), ut_call_msg, &c), 0);
	ut_wait(&s);
	sem_destroy(&s);
}

static __attribute__((unused)) void ut_nothing(void *arg)
{
	(void)arg;
}

/* Every reactor has run everything sent to it before this call (one round trip each). */
static __attribute__((unused)) void ut_settle(void)
{
	for (int round = 0; round < 3; round++) {
		for (uint32_t r = 0; r < mimo_reactor_count(); r++)
			ut_on(r, ut_nothing, NULL);
	}
}

/* --- bdevs and devices -------------------------------------------------------------------- */

struct ut_create {
	const char *kind, *name, *base;
	uint64_t blocks;
	uint32_t bs;
	int rc;
};

static __attribute__((unused)) void ut_create_msg(void *arg)
{
	struct ut_create *c = arg;
	struct mimo_bdev *b;

	if (strcmp(c->kind, "malloc") == 0)
		c->rc = bdev_malloc_create(c->name, c->blocks, c->bs, NULL, &b);
	else if (strcmp(c->kind, "null") == 0)
		c->rc = bdev_null_create(c->name, c->blocks, c->bs, NULL, &b);
	else
		c->rc = bdev_error_create(c->base, NULL, &b);
}

static __attribute__((unused)) int ut_malloc(const char *name, uint64_t blocks, uint32_t bs)
{
	struct ut_create c = { "malloc", name, NULL, blocks, bs, 0 };

	ut_on(0, ut_create_msg, &c);
	return c.rc;
}

static __attribute__((unused)) int ut_error_bdev(const char *base)
{
	struct ut_create c = { "error", NULL, base, 0, 0, 0 };

	ut_on(0, ut_create_msg, &c);
	return c.rc;
}

struct ut_del {
	const char *name;
	sem_t sem;
	int rc;
};

static __attribute__((unused)) void ut_deleted(void *arg, int rc)
{
	struct ut_del *d = arg;

	d->rc = rc;
	sem_post(&d->sem);
}

static __attribute__((unused)) void ut_del_msg(void *arg)
{
	struct ut_del *d = arg;
	int rc = mimo_bdev_delete(d->name, ut_deleted, d);

	if (rc != 0) {
		d->rc = rc;
		sem_post(&d->sem);
	}
}

static __attribute__((unused)) int ut_delete_bdev(const char *name)
{
	struct ut_del d = { .name = name };

	sem_init(&d.sem, 0, 0);
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), ut_del_msg, &d), 0);
	ut_wait(&d.sem);
	sem_destroy(&d.sem);
	return d.rc;
}

/* LUN events, as the owner (reactor 0) saw them. */
static __attribute__((unused)) int g_events_removed, g_events_resized;
static __attribute__((unused)) uint32_t g_event_lun;

static __attribute__((unused)) void ut_event(void *ctx, struct mimo_scsi_dev *dev, uint32_t lun,
					     enum mimo_scsi_lun_event event)
{
	(void)ctx;
	(void)dev;
	g_event_lun = lun;
	if (event == MIMO_SCSI_LUN_EVENT_REMOVED)
		g_events_removed++;
	else
		g_events_resized++;
}

struct ut_dev {
	const char *name;
	const char *const *bdevs;
	const uint32_t *ids;
	int n;
	struct mimo_scsi_dev *dev;
	int rc;
	sem_t sem;
};

static __attribute__((unused)) void ut_dev_create_msg(void *arg)
{
	struct ut_dev *d = arg;

	d->rc = mimo_scsi_dev_create(d->name, d->bdevs, d->ids, d->n, ut_event, NULL, &d->dev);
}

static struct mimo_scsi_dev *ut_dev_create(const char *name, const char *const *bdevs,
					   const uint32_t *ids, int n)
{
	struct ut_dev d = { name, bdevs, ids, n, NULL, 0 };

	ut_on(0, ut_dev_create_msg, &d);
	assert_int_equal(d.rc, 0);
	return d.dev;
}

static __attribute__((unused)) void ut_dev_destroyed(void *arg)
{
	sem_post(arg);
}

static __attribute__((unused)) void ut_dev_destroy_msg(void *arg)
{
	struct ut_dev *d = arg;

	mimo_scsi_dev_destroy(d->dev, ut_dev_destroyed, &d->sem);
}

static __attribute__((unused)) void ut_dev_destroy(struct mimo_scsi_dev *dev)
{
	struct ut_dev d = { .dev = dev };

	sem_init(&d.sem, 0, 0);
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), ut_dev_destroy_msg, &d), 0);
	ut_wait(&d.sem);
	sem_destroy(&d.sem);
}

/* --- commands ----------------------------------------------------------------------------- */

struct ut_cmd {
	struct mimo_scsi_task task;
	struct iovec iov[8];
	struct mimo_scsi_dev *dev;
	sem_t sem;
	int completions;
};

static __attribute__((unused)) void ut_cmd_done(struct mimo_scsi_task *task)
{
	struct ut_cmd *c = task->cb_arg;

	c->completions++;
	sem_post(&c->sem);
}

static __attribute__((unused)) void ut_submit_msg(void *arg)
{
	struct ut_cmd *c = arg;

	mimo_scsi_dev_submit(c->dev, &c->task);
	/* Never inside the submission: the layer completes later. (Not a cmocka assertion:
	 * this runs on a reactor thread.) */
	if (c->completions != 0) {
		fprintf(stderr, "completed inside mimo_scsi_dev_submit (opcode %02x)\n",
			c->task.cdb[0]);
		abort();
	}
}

/* Prepare a command: the CDB (zero-padded), direction, one buffer (split over niov iovecs
 * of equal size when niov > 1), transfer length. */
static __attribute__((unused)) void ut_prep(struct ut_cmd *c, struct mimo_scsi_dev *dev,
					    uint32_t lun, const uint8_t *cdb, size_t cdb_len,
					    enum mimo_scsi_dir dir, void *buf, uint32_t buf_len,
					    uint32_t transfer_len, int niov)
{
	mimo_scsi_task_init(&c->task);
	c->dev = dev;
	c->completions = 0;
	sem_init(&c->sem, 0, 0);
	c->task.lun = lun;
	memcpy(c->task.cdb, cdb, cdb_len);
	c->task.dir = dir;
	c->task.transfer_len = transfer_len;
	c->task.cb = ut_cmd_done;
	c->task.cb_arg = c;
	c->task.tag = (uintptr_t)c;
	if (buf != NULL && buf_len > 0) {
		uint32_t per = niov > 1 ? buf_len / (uint32_t)niov : buf_len;

		if (niov < 1)
			niov = 1;
		for (int i = 0; i < niov; i++) {
			c->iov[i].iov_base = (uint8_t *)buf + (size_t)i * per;
			c->iov[i].iov_len = i == niov - 1 ? buf_len - (uint32_t)i * per : per;
		}
		c->task.iovs = c->iov;
		c->task.iovcnt = niov;
	}
}

static __attribute__((unused)) void ut_start(struct ut_cmd *c, uint32_t reactor)
{
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(reactor), ut_submit_msg, c), 0);
}

static __attribute__((unused)) uint8_t ut_finish(struct ut_cmd *c)
{
	ut_wait(&c->sem);
	assert_int_equal(c->completions, 1);
	sem_destroy(&c->sem);
	return c->task.status;
}

/* Run a command on reactor 0 and return its status; the task (sense, residual) stays in c. */
static __attribute__((unused)) uint8_t ut_run(struct ut_cmd *c, struct mimo_scsi_dev *dev,
					      uint32_t lun, const uint8_t *cdb, size_t cdb_len,
					      enum mimo_scsi_dir dir, void *buf, uint32_t len)
{
	ut_prep(c, dev, lun, cdb, cdb_len, dir, buf, len, len, 1);
	ut_start(c, 0);
	return ut_finish(c);
}

/* Sense key and ASC/ASCQ (as ASC << 8 | ASCQ) of either format. */
static __attribute__((unused)) uint8_t ut_key(const struct mimo_scsi_task *t)
{
	assert_true(t->sense_len >= 8);
	return (t->sense[0] & 0x7f) == 0x72 ? t->sense[1] & 0x0f : t->sense[2] & 0x0f;
}

static __attribute__((unused)) uint16_t ut_asc(const struct mimo_scsi_task *t)
{
	if ((t->sense[0] & 0x7f) == 0x72)
		return (uint16_t)(t->sense[2] << 8 | t->sense[3]);
	return (uint16_t)(t->sense[12] << 8 | t->sense[13]);
}

/* CHECK CONDITION with this key and ASC/ASCQ. */
static __attribute__((unused)) void ut_expect_sense(const struct mimo_scsi_task *t, uint8_t key,
						    uint16_t asc)
{
	assert_int_equal(t->status, MIMO_SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(ut_key(t), key);
	assert_int_equal(ut_asc(t), asc);
}

/* INVALID FIELD IN CDB with the field pointer at byte, bit pointer bit (-1: none). */
static __attribute__((unused)) void ut_expect_field(const struct mimo_scsi_task *t, uint16_t byte,
						    int bit)
{
	ut_expect_sense(t, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(t->sense[0], 0x70);
	assert_int_equal(t->sense_len, 18);
	assert_int_equal(t->sense[15] & 0xc0, 0xc0); /* SKSV, C/D */
	if (bit >= 0)
		assert_int_equal(t->sense[15] & 0x0f, 0x08 | bit);
	assert_int_equal(t->sense[16] << 8 | t->sense[17], byte);
}

static __attribute__((unused)) uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static __attribute__((unused)) uint64_t be64(const uint8_t *b)
{
	return (uint64_t)be32(b) << 32 | be32(b + 4);
}

static __attribute__((unused)) void put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static __attribute__((unused)) void put64(uint8_t *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b + 4, (uint32_t)v);
}

/* CDB builders. */
static __attribute__((unused)) void cdb10(uint8_t *c, uint8_t op, uint8_t flags, uint32_t lba,
					  uint16_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = flags;
	put32(c + 2, lba);
	c[7] = (uint8_t)(n >> 8);
	c[8] = (uint8_t)n;
}

static __attribute__((unused)) void cdb16(uint8_t *c, uint8_t op, uint8_t flags, uint64_t lba,
					  uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = flags;
	put64(c + 2, lba);
	put32(c + 10, n);
}

static __attribute__((unused)) void cdb12(uint8_t *c, uint8_t op, uint8_t flags, uint32_t lba,
					  uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = flags;
	put32(c + 2, lba);
	put32(c + 6, n);
}

static __attribute__((unused)) void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 9));
}

/* Read n blocks at lba through READ(16); asserts GOOD. */
static __attribute__((unused)) void ut_read(struct mimo_scsi_dev *dev, uint32_t lun, uint64_t lba,
					    uint32_t n, uint32_t bs, void *buf)
{
	struct ut_cmd c;
	uint8_t cdb[16];

	cdb16(cdb, MIMO_SCSI_OP_READ16, 0, lba, n);
	assert_int_equal(ut_run(&c, dev, lun, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, buf, n * bs),
			 MIMO_SCSI_STATUS_GOOD);
}

static __attribute__((unused)) void ut_write(struct mimo_scsi_dev *dev, uint32_t lun, uint64_t lba,
					     uint32_t n, uint32_t bs, void *buf)
{
	struct ut_cmd c;
	uint8_t cdb[16];

	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, lba, n);
	assert_int_equal(ut_run(&c, dev, lun, cdb, 16, MIMO_SCSI_DIR_TO_DEV, buf, n * bs),
			 MIMO_SCSI_STATUS_GOOD);
}

/* Take the unit attention a new LUN starts with. */
static __attribute__((unused)) void ut_clear_ua(struct mimo_scsi_dev *dev, uint32_t lun)
{
	struct ut_cmd c;
	uint8_t cdb[6] = { 0 };

	for (int i = 0; i < 8; i++) {
		if (ut_run(&c, dev, lun, cdb, 6, MIMO_SCSI_DIR_NONE, NULL, 0) ==
		    MIMO_SCSI_STATUS_GOOD)
			return;
		assert_int_equal(ut_key(&c.task), MIMO_SCSI_SENSE_UNIT_ATTENTION);
	}
	fail();
}

static __attribute__((unused)) int ut_setup_reactors(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	mimo_register_bdev_null();
	mimo_register_bdev_error();
	mimo_register_jsonrpc();
	mimo_register_scsi();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	/* Two reactors where there are two CPUs: tasks of one LUN on both, as front-ends with
	 * several queues submit them. */
	o.core_mask = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 0x3 : 0x1;
	o.idle_spin_us = 0;
	return mimo_reactors_start(&o);
}

static __attribute__((unused)) int ut_teardown_reactors(void **state)
{
	(void)state;
	mimo_reactors_stop();
	return 0;
}

#endif /* MIMO_SCSI_UT_H */
