/*
 * A LUN's life on real reactors: unit attentions and their order, task management, hot
 * removal and hot add, COMPARE AND WRITE against concurrent I/O on two reactors,
 * read-only LUNs and bdev errors as sense data, device creation and destruction.
 *
 * Writes are held inside the bdev layer with a write hook (mimo_bdev_io_hold), so that a
 * test can put a task "in flight" for as long as it likes; nothing here waits on time.
 */
#include <stdatomic.h>

#include "scsi_internal.h"
#include "scsi_ut.h"

#define BS 512u

/* --- holding writes ----------------------------------------------------------------------------
 */

static struct mimo_bdev *_Atomic g_hold_bdev;
static _Atomic uint64_t g_hold_lba = UINT64_MAX;
static struct mimo_bdev_io *_Atomic g_held;

static void hold_hook(void *arg, struct mimo_bdev_io *io, struct mimo_bdev *bdev, uint64_t off,
		      uint64_t num)
{
	(void)arg;
	(void)num;
	if (bdev == atomic_load(&g_hold_bdev) && off == atomic_load(&g_hold_lba) &&
	    atomic_load(&g_held) == NULL) {
		mimo_bdev_io_hold(io);
		atomic_store(&g_held, io);
	}
}

/* Hold the next write to lba of bdev name. */
static void hold_next(const char *name, uint64_t lba)
{
	atomic_store(&g_held, NULL);
	atomic_store(&g_hold_bdev, mimo_bdev_get_by_name(name));
	atomic_store(&g_hold_lba, lba);
}

static struct mimo_bdev_io *wait_held(void)
{
	struct mimo_bdev_io *io;

	while ((io = atomic_load(&g_held)) == NULL)
		usleep(1000);
	return io;
}

static void release_held(void)
{
	struct mimo_bdev_io *io = atomic_exchange(&g_held, NULL);

	atomic_store(&g_hold_lba, UINT64_MAX);
	assert_non_null(io);
	mimo_bdev_io_release(io);
}

/* --- completion order --------------------------------------------------------------------------
 */

static _Atomic int g_seq;

struct seq_cmd {
	struct ut_cmd c;
	int seq;
};

static void seq_done(struct mimo_scsi_task *task)
{
	struct seq_cmd *s = task->cb_arg;

	s->seq = atomic_fetch_add(&g_seq, 1) + 1;
	s->c.completions++;
	sem_post(&s->c.sem);
}

static void seq_prep(struct seq_cmd *s, struct mimo_scsi_dev *dev, uint32_t lun, const uint8_t *cdb,
		     enum mimo_scsi_dir dir, void *buf, uint32_t len)
{
	ut_prep(&s->c, dev, lun, cdb, 16, dir, buf, len, len, 1);
	s->c.task.cb = seq_done;
	s->c.task.cb_arg = s;
	s->seq = 0;
}

/* --- task management from the test thread -------------------------------------------------------
 */

struct tmf_call {
	struct mimo_scsi_dev *dev;
	enum mimo_scsi_tmf fn;
	uint32_t lun;
	uint64_t tag;
	_Atomic int resp;
	int seq;
	sem_t sem;
};

static void tmf_done(void *arg, enum mimo_scsi_tmf_response resp)
{
	struct tmf_call *t = arg;

	t->seq = atomic_fetch_add(&g_seq, 1) + 1;
	atomic_store(&t->resp, (int)resp);
	sem_post(&t->sem);
}

static void tmf_msg(void *arg)
{
	struct tmf_call *t = arg;

	if (mimo_scsi_dev_task_mgmt(t->dev, t->fn, t->lun, t->tag, tmf_done, t) != 0)
		abort();
	if (atomic_load(&t->resp) != -1) {
		fprintf(stderr, "task management answered inside the call\n");
		abort();
	}
}

static void tmf_start(struct tmf_call *t, struct mimo_scsi_dev *dev, enum mimo_scsi_tmf fn,
		      uint32_t lun, uint64_t tag, uint32_t reactor)
{
	t->dev = dev;
	t->fn = fn;
	t->lun = lun;
	t->tag = tag;
	atomic_store(&t->resp, -1);
	sem_init(&t->sem, 0, 0);
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(reactor), tmf_msg, t), 0);
}

static int tmf_finish(struct tmf_call *t)
{
	ut_wait(&t->sem);
	sem_destroy(&t->sem);
	return atomic_load(&t->resp);
}

static int tmf(struct mimo_scsi_dev *dev, enum mimo_scsi_tmf fn, uint32_t lun, uint64_t tag)
{
	struct tmf_call t;

	tmf_start(&t, dev, fn, lun, tag, 0);
	return tmf_finish(&t);
}

/* --- device calls on the owner (reactor 0) ------------------------------------------------------
 */

struct owner_call {
	struct mimo_scsi_dev *dev;
	const char *bdev;
	int32_t lun;
	int rc;
	sem_t *done;
};

static void add_lun_msg(void *arg)
{
	struct owner_call *o = arg;

	o->rc = mimo_scsi_dev_add_lun(o->dev, o->bdev, o->lun);
}

static int add_lun(struct mimo_scsi_dev *dev, const char *bdev, int32_t lun)
{
	struct owner_call o = { dev, bdev, lun, 0, NULL };

	ut_on(0, add_lun_msg, &o);
	return o.rc;
}

static void removed_cb(void *arg)
{
	struct owner_call *o = arg;

	sem_post(o->done);
}

static void remove_lun_msg(void *arg)
{
	struct owner_call *o = arg;

	o->rc = mimo_scsi_dev_remove_lun(o->dev, (uint32_t)o->lun, removed_cb, o);
	if (o->rc != 0)
		sem_post(o->done);
}

static int remove_lun(struct mimo_scsi_dev *dev, uint32_t lun)
{
	sem_t s;
	struct owner_call o = { dev, NULL, (int32_t)lun, 0, &s };

	sem_init(&s, 0, 0);
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), remove_lun_msg, &o), 0);
	ut_wait(&s);
	sem_destroy(&s);
	return o.rc;
}

static uint8_t tur(struct mimo_scsi_dev *dev, uint32_t lun, struct ut_cmd *c)
{
	uint8_t cdb[6] = { 0 };

	return ut_run(c, dev, lun, cdb, 6, MIMO_SCSI_DIR_NONE, NULL, 0);
}

static void expect_ua(struct mimo_scsi_dev *dev, uint32_t lun, uint16_t asc)
{
	struct ut_cmd c;

	tur(dev, lun, &c);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_UNIT_ATTENTION, asc);
}

static void set_blockcnt_msg(void *arg)
{
	uint64_t *v = arg;

	mimo_bdev_get_by_name("U0")->blockcnt = *v;
}

/* --- unit attentions
 * ------------------------------------------------------------------------------ */

static void test_unit_attention_order(void **state)
{
	static const char *const bdevs[] = { "U0" };
	struct mimo_scsi_dev *dev;
	uint8_t cdb[16] = { 0 }, buf[64], page[12];
	struct ut_cmd c;
	uint64_t cnt;

	(void)state;
	assert_int_equal(ut_malloc("U0", 128, BS), 0);
	assert_int_equal(ut_malloc("U1", 128, BS), 0);
	assert_int_equal(ut_malloc("U2", 128, BS), 0);
	dev = ut_dev_create("ua", bdevs, NULL, 1);

	/* INQUIRY and REPORT LUNS neither report nor clear it; TEST UNIT READY does. */
	cdb[0] = MIMO_SCSI_OP_INQUIRY;
	cdb[4] = 36;
	assert_int_equal(ut_run(&c, dev, 0, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 36),
			 MIMO_SCSI_STATUS_GOOD);
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_REPORT_LUNS;
	cdb[9] = 64;
	assert_int_equal(ut_run(&c, dev, 0, cdb, 12, MIMO_SCSI_DIR_FROM_DEV, buf, 64),
			 MIMO_SCSI_STATUS_GOOD);
	expect_ua(dev, 0, MIMO_SCSI_ASC_POWER_ON_OCCURRED);
	assert_int_equal(tur(dev, 0, &c), MIMO_SCSI_STATUS_GOOD);

	/* A reset, then a new LUN (inventory changed), then a smaller capacity: reported one
	 * per command, in SPC-4's order, each once. Any command takes them (READ here). */
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_LOGICAL_UNIT_RESET, 0, 0),
			 MIMO_SCSI_TMF_RESP_COMPLETE);
	assert_int_equal(add_lun(dev, "U1", -1), 1);
	cnt = 120;
	ut_on(0, set_blockcnt_msg, &cnt);
	g_events_resized = 0;
	cdb16(cdb, MIMO_SCSI_OP_READ16, 0, 0, 1);
	ut_run(&c, dev, 0, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, buf, BS > 64 ? 64 : BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_UNIT_ATTENTION,
			MIMO_SCSI_ASC_BUS_DEVICE_RESET_OCCURRED);
	expect_ua(dev, 0, MIMO_SCSI_ASC_CAPACITY_DATA_CHANGED);
	expect_ua(dev, 0, MIMO_SCSI_ASC_REPORTED_LUNS_DATA_CHANGED);
	assert_int_equal(tur(dev, 0, &c), MIMO_SCSI_STATUS_GOOD);
	ut_settle();
	assert_int_equal(g_events_resized, 1);
	assert_int_equal(g_event_lun, 0);
	cdb10(cdb, MIMO_SCSI_OP_READ_CAPACITY10, 0, 0, 0);
	assert_int_equal(ut_run(&c, dev, 0, cdb, 10, MIMO_SCSI_DIR_FROM_DEV, buf, 8),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), 119);
	cnt = 128;
	ut_on(0, set_blockcnt_msg, &cnt);
	expect_ua(dev, 0, MIMO_SCSI_ASC_CAPACITY_DATA_CHANGED);

	/* REQUEST SENSE returns a unit attention as its data, and clears it. */
	expect_ua(dev, 1, MIMO_SCSI_ASC_POWER_ON_OCCURRED);
	assert_int_equal(add_lun(dev, "U2", 7), 7);
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_REQUEST_SENSE;
	cdb[4] = 18;
	assert_int_equal(ut_run(&c, dev, 1, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 18),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[2], MIMO_SCSI_SENSE_UNIT_ATTENTION);
	assert_int_equal(buf[12] << 8 | buf[13], MIMO_SCSI_ASC_REPORTED_LUNS_DATA_CHANGED);
	assert_int_equal(tur(dev, 1, &c), MIMO_SCSI_STATUS_GOOD);
	/* REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_REPORT_LUNS;
	cdb[9] = 64;
	assert_int_equal(ut_run(&c, dev, 7, cdb, 12, MIMO_SCSI_DIR_FROM_DEV, buf, 64),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), 24);
	assert_int_equal(buf[8 + 1], 0);
	assert_int_equal(buf[16 + 1], 1);
	assert_int_equal(buf[24 + 1], 7);
	assert_int_equal(tur(dev, 0, &c), MIMO_SCSI_STATUS_GOOD);
	expect_ua(dev, 7, MIMO_SCSI_ASC_POWER_ON_OCCURRED);

	/* A logical unit reset restores the mode pages' defaults (SWP off). */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_MODE_SENSE6;
	cdb[1] = 0x08;
	cdb[2] = 0x0a;
	cdb[4] = 64;
	ut_run(&c, dev, 0, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 64);
	memcpy(page, buf + 4, 12);
	page[4] |= 0x08;
	memset(buf, 0, 16);
	memcpy(buf + 4, page, 12);
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_MODE_SELECT6;
	cdb[1] = 0x10;
	cdb[4] = 16;
	assert_int_equal(ut_run(&c, dev, 0, cdb, 6, MIMO_SCSI_DIR_TO_DEV, buf, 16),
			 MIMO_SCSI_STATUS_GOOD);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 0, 1);
	ut_run(&c, dev, 0, cdb, 16, MIMO_SCSI_DIR_TO_DEV, buf, 64);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_DATA_PROTECT,
			MIMO_SCSI_ASC_SOFTWARE_WRITE_PROTECTED);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_TARGET_RESET, 0, 0), MIMO_SCSI_TMF_RESP_COMPLETE);
	for (uint32_t l = 0; l < 8; l += l == 1 ? 6 : 1)
		expect_ua(dev, l, MIMO_SCSI_ASC_BUS_DEVICE_RESET_OCCURRED);
	{
		uint8_t blk[BS] = { 0 };

		ut_write(dev, 0, 0, 1, BS, blk);
	}
	ut_dev_destroy(dev);
	assert_int_equal(ut_delete_bdev("U0"), 0);
	assert_int_equal(ut_delete_bdev("U1"), 0);
	assert_int_equal(ut_delete_bdev("U2"), 0);
}

/* --- hot removal and hot add
 * ---------------------------------------------------------------------- */

static void test_hot_remove(void **state)
{
	static const char *const bdevs[] = { "H0", "H1" };
	struct mimo_scsi_dev *dev;
	struct seq_cmd w;
	uint8_t cdb[16], blk[BS], buf[64];
	struct ut_cmd c;
	uint32_t last = mimo_reactor_count() - 1;

	(void)state;
	assert_int_equal(mimo_bdev_add_write_hook(hold_hook, NULL), 0);
	assert_int_equal(ut_malloc("H0", 64, BS), 0);
	assert_int_equal(ut_malloc("H1", 64, BS), 0);
	dev = ut_dev_create("hr", bdevs, NULL, 2);
	ut_clear_ua(dev, 0);
	ut_clear_ua(dev, 1);
	g_events_removed = 0;

	/* A write in flight on LUN 1 when its bdev is deleted: the LUN disappears at once for
	 * new tasks, the write completes, then the bdev goes and the owner hears of it. */
	memset(blk, 'h', BS);
	hold_next("H1", 3);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 3, 1);
	seq_prep(&w, dev, 1, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_start(&w.c, last);
	wait_held();
	{
		struct ut_del d = { .name = "H1" };

		sem_init(&d.sem, 0, 0);
		assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), ut_del_msg, &d), 0);
		ut_settle();
		assert_int_equal(tur(dev, 1, &c), MIMO_SCSI_STATUS_CHECK_CONDITION);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
		assert_int_equal(g_events_removed, 0); /* the write still runs */
		release_held();
		assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_GOOD);
		ut_wait(&d.sem);
		sem_destroy(&d.sem);
		assert_int_equal(d.rc, 0);
	}
	ut_settle();
	assert_int_equal(g_events_removed, 1);
	assert_int_equal(g_event_lun, 1);
	assert_null(mimo_scsi_dev_get_lun_bdev(dev, 1));
	expect_ua(dev, 0, MIMO_SCSI_ASC_REPORTED_LUNS_DATA_CHANGED);
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_REPORT_LUNS;
	cdb[9] = 64;
	assert_int_equal(ut_run(&c, dev, 0, cdb, 12, MIMO_SCSI_DIR_FROM_DEV, buf, 64),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), 8);

	/* Hot add at the same id; explicit removal gets its callback and no event. */
	assert_int_equal(ut_malloc("H2", 64, BS), 0);
	assert_int_equal(add_lun(dev, "H2", 1), 1);
	assert_string_equal(mimo_scsi_dev_get_lun_bdev(dev, 1), "H2");
	expect_ua(dev, 1, MIMO_SCSI_ASC_POWER_ON_OCCURRED);
	expect_ua(dev, 0, MIMO_SCSI_ASC_REPORTED_LUNS_DATA_CHANGED);
	{
		json_t *l = mimo_scsi_dev_luns_json(dev);

		assert_int_equal(json_array_size(l), 2);
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(l, 1), "bdev_name")),
			"H2");
		json_decref(l);
	}
	assert_int_equal(remove_lun(dev, 1), 0);
	assert_int_equal(remove_lun(dev, 1), -ENODEV);
	ut_settle();
	assert_int_equal(g_events_removed, 1);
	assert_int_equal(ut_delete_bdev("H2"), 0); /* closed: deleted at once */
	expect_ua(dev, 0, MIMO_SCSI_ASC_REPORTED_LUNS_DATA_CHANGED);

	/* Destroying a device waits for its tasks. */
	hold_next("H0", 9);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 9, 1);
	seq_prep(&w, dev, 0, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_start(&w.c, last);
	wait_held();
	{
		struct ut_dev d = { .dev = dev };

		sem_init(&d.sem, 0, 0);
		assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), ut_dev_destroy_msg, &d),
				 0);
		ut_settle();
		assert_int_equal(sem_trywait(&d.sem), -1);
		release_held();
		assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_GOOD);
		ut_wait(&d.sem);
		sem_destroy(&d.sem);
	}
	assert_int_equal(ut_delete_bdev("H0"), 0);
	mimo_bdev_remove_write_hook(hold_hook, NULL);
}

/* --- task management
 * ------------------------------------------------------------------------------ */

static void test_task_management(void **state)
{
	static const char *const bdevs[] = { "T0" };
	struct mimo_scsi_dev *dev;
	struct seq_cmd w;
	struct tmf_call t;
	uint8_t cdb[16], blk[BS];
	struct ut_cmd c;
	uint32_t last = mimo_reactor_count() - 1;

	(void)state;
	assert_int_equal(mimo_bdev_add_write_hook(hold_hook, NULL), 0);
	assert_int_equal(ut_malloc("T0", 256, BS), 0);
	dev = ut_dev_create("tm", bdevs, NULL, 1);
	ut_clear_ua(dev, 0);
	memset(blk, 't', BS);

	/* QUERY TASK sees a task in flight; ABORT TASK waits for it, which completes ABORTED. */
	hold_next("T0", 77);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 77, 1);
	seq_prep(&w, dev, 0, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	w.c.task.tag = 0x1234;
	ut_start(&w.c, last);
	wait_held();
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_QUERY_TASK, 0, 0x1234),
			 MIMO_SCSI_TMF_RESP_SUCCEEDED);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_QUERY_TASK, 0, 0x9999),
			 MIMO_SCSI_TMF_RESP_COMPLETE);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_ABORT_TASK, 0, 0x9999),
			 MIMO_SCSI_TMF_RESP_COMPLETE);
	tmf_start(&t, dev, MIMO_SCSI_TMF_ABORT_TASK, 0, 0x1234, 0);
	ut_settle();
	assert_int_equal(atomic_load(&t.resp), -1);
	assert_int_equal(w.c.completions, 0);
	release_held();
	assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(w.c.task.sense_len, 0);
	assert_int_equal(tmf_finish(&t), MIMO_SCSI_TMF_RESP_COMPLETE);
	assert_true(t.seq > w.seq);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_QUERY_TASK, 0, 0x1234),
			 MIMO_SCSI_TMF_RESP_COMPLETE);

	/* A logical unit reset with a task in flight, from the other reactor. */
	hold_next("T0", 78);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 78, 1);
	seq_prep(&w, dev, 0, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_start(&w.c, 0);
	wait_held();
	tmf_start(&t, dev, MIMO_SCSI_TMF_LOGICAL_UNIT_RESET, 0, 0, last);
	ut_settle();
	assert_int_equal(atomic_load(&t.resp), -1);
	release_held();
	assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_TASK_ABORTED);
	assert_int_equal(tmf_finish(&t), MIMO_SCSI_TMF_RESP_COMPLETE);
	expect_ua(dev, 0, MIMO_SCSI_ASC_BUS_DEVICE_RESET_OCCURRED);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_ABORT_TASK_SET, 0, 0), MIMO_SCSI_TMF_RESP_COMPLETE);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_CLEAR_TASK_SET, 0, 0), MIMO_SCSI_TMF_RESP_COMPLETE);

	/* No such LUN; no such function. */
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_ABORT_TASK, 5, 1),
			 MIMO_SCSI_TMF_RESP_INCORRECT_LUN);
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_LOGICAL_UNIT_RESET, 999, 0),
			 MIMO_SCSI_TMF_RESP_INCORRECT_LUN);
	assert_int_equal(tmf(dev, (enum mimo_scsi_tmf)99, 0, 0), MIMO_SCSI_TMF_RESP_REJECTED);
	assert_int_equal(tur(dev, 0, &c), MIMO_SCSI_STATUS_GOOD);

	ut_dev_destroy(dev);
	assert_int_equal(ut_delete_bdev("T0"), 0);
	mimo_bdev_remove_write_hook(hold_hook, NULL);
}

/* --- COMPARE AND WRITE and the write gate
 * --------------------------------------------------------- */

static void caw_cdb(uint8_t *cdb, uint64_t lba, uint8_t n)
{
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_COMPARE_AND_WRITE;
	put64(cdb + 2, lba);
	cdb[13] = n;
}

struct parked_check {
	struct mimo_scsi_dev *dev;
	int parked;
};

static void count_parked(void *arg)
{
	struct parked_check *pc = arg;
	struct scsi_lun *lun = atomic_load(&pc->dev->luns[0]);
	struct scsi_lun_reactor *st = &lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];
	struct scsi_task_priv *p;

	pc->parked = 0;
	TAILQ_FOREACH(p, &st->parked, wait)
	pc->parked++;
}

static void test_caw_gate(void **state)
{
	static const char *const bdevs[] = { "C0" };
	struct mimo_scsi_dev *dev;
	struct seq_cmd w, caw, r;
	uint8_t cdb[16], cdb2[16], blk[BS], two[2 * BS], rd[BS];
	uint32_t last = mimo_reactor_count() - 1;
	struct scsi_lun *lun;

	(void)state;
	assert_int_equal(mimo_bdev_add_write_hook(hold_hook, NULL), 0);
	assert_int_equal(ut_malloc("C0", 256, BS), 0);
	dev = ut_dev_create("cw", bdevs, NULL, 1);
	ut_clear_ua(dev, 0);
	lun = atomic_load(&dev->luns[0]);
	memset(blk, 'a', BS);
	ut_write(dev, 0, 9, 1, BS, blk);
	memset(two, 'a', BS);
	memset(two + BS, 'b', BS);

	/* A write in flight: COMPARE AND WRITE waits until it completes. */
	hold_next("C0", 5);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 5, 1);
	seq_prep(&w, dev, 0, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_start(&w.c, last);
	wait_held();
	caw_cdb(cdb2, 9, 1);
	seq_prep(&caw, dev, 0, cdb2, MIMO_SCSI_DIR_TO_DEV, two, 2 * BS);
	ut_start(&caw.c, 0);
	ut_settle();
	assert_int_equal(caw.c.completions, 0);
	assert_true(atomic_load(&lun->drain_pending) > 0);
	assert_true(atomic_load(&lun->frozen));
	release_held();
	assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(ut_finish(&caw.c), MIMO_SCSI_STATUS_GOOD);
	assert_true(caw.seq > w.seq);
	assert_false(atomic_load(&lun->frozen));

	/* While a COMPARE AND WRITE writes, other writes and reads park. */
	memset(two, 'b', BS);
	memset(two + BS, 'c', BS);
	hold_next("C0", 9); /* the COMPARE AND WRITE's own write */
	caw_cdb(cdb2, 9, 1);
	seq_prep(&caw, dev, 0, cdb2, MIMO_SCSI_DIR_TO_DEV, two, 2 * BS);
	ut_start(&caw.c, 0);
	wait_held();
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 20, 1);
	seq_prep(&w, dev, 0, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_start(&w.c, last);
	{
		uint8_t cdb3[16];

		cdb16(cdb3, MIMO_SCSI_OP_READ16, 0, 9, 1);
		seq_prep(&r, dev, 0, cdb3, MIMO_SCSI_DIR_FROM_DEV, rd, BS);
		ut_start(&r.c, last);
	}
	ut_settle();
	{
		struct parked_check pc = { dev, 0 };

		ut_on(last, count_parked, &pc);
		assert_int_equal(pc.parked, 2);
	}
	assert_int_equal(w.c.completions, 0);
	assert_int_equal(r.c.completions, 0);
	release_held();
	assert_int_equal(ut_finish(&caw.c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(ut_finish(&r.c), MIMO_SCSI_STATUS_GOOD);
	assert_true(w.seq > caw.seq);
	assert_true(r.seq > caw.seq);
	/* The read saw the block whole, as the COMPARE AND WRITE left it. */
	for (uint32_t i = 0; i < BS; i++)
		assert_int_equal(rd[i], 'c');

	/* ABORT TASK of a parked write: it ends at once. */
	memset(two, 'c', BS);
	memset(two + BS, 'd', BS);
	hold_next("C0", 9);
	seq_prep(&caw, dev, 0, cdb2, MIMO_SCSI_DIR_TO_DEV, two, 2 * BS);
	ut_start(&caw.c, 0);
	wait_held();
	seq_prep(&w, dev, 0, cdb, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	w.c.task.tag = 0xabc;
	ut_start(&w.c, last);
	ut_settle();
	assert_int_equal(tmf(dev, MIMO_SCSI_TMF_ABORT_TASK, 0, 0xabc), MIMO_SCSI_TMF_RESP_COMPLETE);
	assert_int_equal(ut_finish(&w.c), MIMO_SCSI_STATUS_TASK_ABORTED);
	release_held();
	assert_int_equal(ut_finish(&caw.c), MIMO_SCSI_STATUS_GOOD);

	ut_dev_destroy(dev);
	assert_int_equal(ut_delete_bdev("C0"), 0);
	mimo_bdev_remove_write_hook(hold_hook, NULL);
}

/*
 * A counter in block 0 incremented with COMPARE AND WRITE from every reactor at once, each
 * reading the block, then asking for "if it still holds what I read, write it plus one",
 * retrying on MISCOMPARE; meanwhile plain writes go to other blocks. If any two increments
 * interleaved, one would be lost; if a read saw a block half written, ThreadSanitizer (make
 * test-tsan) would see the bdev's copies race.
 */
#define INCREMENTS 50
#define CHAINS	   4 /* per reactor: their reads and COMPARE AND WRITEs interleave */

struct incr {
	struct mimo_scsi_dev *dev;
	struct mimo_scsi_task task;
	struct iovec iov;
	uint8_t data[2 * BS];
	uint8_t other[BS];
	int done, retries, step;
	uint32_t reactor;
	sem_t *finished;
};

static void incr_next(struct incr *in);

static void incr_cb(struct mimo_scsi_task *task)
{
	struct incr *in = task->cb_arg;

	switch (in->step) {
	case 0: /* the block was read into data[0..BS) */
		if (task->status != MIMO_SCSI_STATUS_GOOD)
			abort();
		memcpy(in->data + BS, in->data, BS);
		for (int i = 0; i < 8; i++) { /* + 1, little-endian */
			if (++in->data[BS + i] != 0)
				break;
		}
		in->step = 1;
		break;
	case 1:
		if (task->status == MIMO_SCSI_STATUS_GOOD) {
			in->done++;
			in->step = 2;
		} else if (task->status == MIMO_SCSI_STATUS_CHECK_CONDITION &&
			   (task->sense[2] & 0x0f) == MIMO_SCSI_SENSE_MISCOMPARE) {
			in->retries++;
			in->step = 0;
		} else {
			abort();
		}
		break;
	default: /* a plain write elsewhere went through */
		if (task->status != MIMO_SCSI_STATUS_GOOD)
			abort();
		in->step = 0;
		break;
	}
	if (in->done == INCREMENTS && in->step == 0) {
		sem_post(in->finished);
		return;
	}
	incr_next(in);
}

static void incr_next(struct incr *in)
{
	struct mimo_scsi_task *t = &in->task;

	mimo_scsi_task_init(t);
	t->cb = incr_cb;
	t->cb_arg = in;
	t->iovs = &in->iov;
	t->iovcnt = 1;
	switch (in->step) {
	case 0:
		cdb16(t->cdb, MIMO_SCSI_OP_READ16, 0, 0, 1);
		t->dir = MIMO_SCSI_DIR_FROM_DEV;
		in->iov = (struct iovec){ in->data, BS };
		break;
	case 1:
		caw_cdb(t->cdb, 0, 1);
		t->dir = MIMO_SCSI_DIR_TO_DEV;
		in->iov = (struct iovec){ in->data, 2 * BS };
		break;
	default:
		cdb16(t->cdb, MIMO_SCSI_OP_WRITE16, 0, 10 + in->reactor, 1);
		t->dir = MIMO_SCSI_DIR_TO_DEV;
		in->iov = (struct iovec){ in->other, BS };
		break;
	}
	t->transfer_len = (uint32_t)in->iov.iov_len;
	mimo_scsi_dev_submit(in->dev, t);
}

static void incr_start(void *arg)
{
	incr_next(arg);
}

static void test_caw_concurrent_increments(void **state)
{
	static const char *const bdevs[] = { "I0" };
	uint32_t n = mimo_reactor_count();
	struct incr *in = calloc(n * CHAINS, sizeof(*in));
	struct mimo_scsi_dev *dev;
	uint8_t blk[BS] = { 0 };
	sem_t finished;
	uint64_t value = 0;

	(void)state;
	assert_int_equal(ut_malloc("I0", 64, BS), 0);
	dev = ut_dev_create("inc", bdevs, NULL, 1);
	ut_clear_ua(dev, 0);
	ut_write(dev, 0, 0, 1, BS, blk);
	sem_init(&finished, 0, 0);
	for (uint32_t i = 0; i < n * CHAINS; i++) {
		in[i].dev = dev;
		in[i].reactor = i % n;
		in[i].finished = &finished;
		memset(in[i].other, (int)i, BS);
		assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(i % n), incr_start, &in[i]),
				 0);
	}
	for (uint32_t i = 0; i < n * CHAINS; i++)
		ut_wait(&finished);
	ut_read(dev, 0, 0, 1, BS, blk);
	for (int i = 7; i >= 0; i--)
		value = value << 8 | blk[i];
	assert_int_equal(value, (uint64_t)INCREMENTS * CHAINS * n);
	{
		int retries = 0;

		for (uint32_t i = 0; i < n * CHAINS; i++)
			retries += in[i].retries;
		/* Retries show that the increments did race (with one reactor, none). */
		print_message("%u reactors x %d chains, %d increments each, %d miscompares "
			      "retried\n",
			      n, CHAINS, INCREMENTS, retries);
		assert_true(retries > 0);
	}
	sem_destroy(&finished);
	free(in);
	ut_dev_destroy(dev);
	assert_int_equal(ut_delete_bdev("I0"), 0);
}

/* --- read-only LUNs, bdev errors -----------------------------------------------------------------
 */

static void test_readonly_and_errors(void **state)
{
	static const char *const bdevs[] = { "E0", "EE_E0" };
	struct mimo_scsi_dev *dev;
	uint8_t cdb[16], blk[BS], buf[64];
	struct ut_cmd c;
	(void)state;
	assert_int_equal(ut_malloc("E0", 64, BS), 0);
	assert_int_equal(ut_error_bdev("E0"), 0); /* EE_E0 claims E0 */
	dev = ut_dev_create("er", bdevs, NULL, 2);
	ut_clear_ua(dev, 0);
	ut_clear_ua(dev, 1);
	memset(blk, 'e', BS);

	/* LUN 0: the claimed base, read-only. */
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 1, 1);
	ut_run(&c, dev, 0, cdb, 16, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_DATA_PROTECT, MIMO_SCSI_ASC_WRITE_PROTECTED);
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_MODE_SENSE6;
	cdb[2] = 0x3f;
	cdb[4] = 64;
	ut_run(&c, dev, 0, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 64);
	assert_int_equal(buf[2] & 0x80, 0x80);
	cdb16(cdb, MIMO_SCSI_OP_READ16, 0, 1, 1);
	assert_int_equal(ut_run(&c, dev, 0, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, blk, BS),
			 MIMO_SCSI_STATUS_GOOD);
	memset(cdb, 0, 16); /* no unmap on a read-only LUN: LBPME 0 */
	cdb[0] = MIMO_SCSI_OP_SERVICE_ACTION_IN16;
	cdb[1] = MIMO_SCSI_SAI_READ_CAPACITY16;
	cdb[13] = 32;
	ut_run(&c, dev, 0, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, buf, 32);
	assert_int_equal(buf[14] & 0x80, 0);
	/* ...and UNMAP is not among its commands (the error bdev's LUN has it). */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_MAINTENANCE_IN;
	cdb[1] = MIMO_SCSI_MI_REPORT_SUPPORTED_OPCODES;
	cdb[2] = 1;
	cdb[3] = MIMO_SCSI_OP_UNMAP;
	cdb[9] = 64;
	assert_int_equal(ut_run(&c, dev, 0, cdb, 12, MIMO_SCSI_DIR_FROM_DEV, buf, 64),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[1] & 7, 1);
	assert_int_equal(ut_run(&c, dev, 1, cdb, 12, MIMO_SCSI_DIR_FROM_DEV, buf, 64),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[1] & 7, 3);
	cdb10(cdb, MIMO_SCSI_OP_UNMAP, 0, 0, 0);
	ut_run(&c, dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, NULL, 0);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_DATA_PROTECT, MIMO_SCSI_ASC_WRITE_PROTECTED);

	/* LUN 1: the error bdev. A failed read is a medium error at its LBA. */
	assert_int_equal(
		bdev_error_inject("EE_E0", MIMO_BDEV_IO_READ, ERROR_INJECT_FAILURE, 1, 0, 0), 0);
	cdb16(cdb, MIMO_SCSI_OP_READ16, 0, 33, 2);
	/* A one-block buffer for two: overflow, and the block it reaches is read. */
	ut_run(&c, dev, 1, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, blk, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MEDIUM_ERROR,
			MIMO_SCSI_ASC_UNRECOVERED_READ_ERROR);
	assert_int_equal(c.task.sense[0], 0xf0);
	assert_int_equal(be32(c.task.sense + 3), 33);
	assert_int_equal(
		bdev_error_inject("EE_E0", MIMO_BDEV_IO_WRITE, ERROR_INJECT_FAILURE, 1, 0, 0), 0);
	cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, 5, 1);
	ut_run(&c, dev, 1, cdb, 16, MIMO_SCSI_DIR_TO_DEV, blk, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MEDIUM_ERROR, MIMO_SCSI_ASC_WRITE_ERROR);
	/* Out of memory below is not the initiator's problem: retried until it passes. */
	assert_int_equal(
		bdev_error_inject("EE_E0", MIMO_BDEV_IO_WRITE, ERROR_INJECT_NOMEM, 3, 0, 0), 0);
	assert_int_equal(ut_run(&c, dev, 1, cdb, 16, MIMO_SCSI_DIR_TO_DEV, blk, BS),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(bdev_error_inject("EE_E0", MIMO_BDEV_IO_READ, ERROR_INJECT_NOMEM, 2, 0, 0),
			 0);
	cdb16(cdb, MIMO_SCSI_OP_READ16, 0, 5, 1);
	assert_int_equal(ut_run(&c, dev, 1, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, buf, 64),
			 MIMO_SCSI_STATUS_GOOD);
	/* A failure in the middle of a VERIFY's steps. */
	assert_int_equal(
		bdev_error_inject("EE_E0", MIMO_BDEV_IO_READ, ERROR_INJECT_FAILURE, 1, 0, 0), 0);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0, 0, 64);
	ut_run(&c, dev, 1, cdb, 10, MIMO_SCSI_DIR_NONE, NULL, 0);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MEDIUM_ERROR,
			MIMO_SCSI_ASC_UNRECOVERED_READ_ERROR);
	ut_dev_destroy(dev);
	assert_int_equal(ut_delete_bdev("EE_E0"), 0);
	assert_int_equal(ut_delete_bdev("E0"), 0);
}

/* --- devices
 * -------------------------------------------------------------------------------------- */

struct create_call {
	const char *name;
	const char *const *bdevs;
	const uint32_t *ids;
	int n;
	int rc;
	struct mimo_scsi_dev *dev;
};

static void create_msg(void *arg)
{
	struct create_call *c = arg;

	c->rc = mimo_scsi_dev_create(c->name, c->bdevs, c->ids, c->n, NULL, NULL, &c->dev);
}

static int try_create(const char *name, const char *const *bdevs, const uint32_t *ids, int n,
		      struct mimo_scsi_dev **dev)
{
	struct create_call c = { name, bdevs, ids, n, 0, NULL };

	ut_on(0, create_msg, &c);
	if (dev != NULL)
		*dev = c.dev;
	return c.rc;
}

static void test_devices(void **state)
{
	static const char *const two[] = { "D0", "D1" }, *const none[] = { "nope" };
	static const uint32_t same[] = { 3, 3 }, high[] = { 255, 0 }, bad[] = { 256 };
	char longname[300];
	struct mimo_scsi_dev *a, *b, *d;
	struct ut_cmd c;

	(void)state;
	assert_int_equal(ut_malloc("D0", 16, BS), 0);
	assert_int_equal(ut_malloc("D1", 16, BS), 0);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(try_create("", two, NULL, 2, NULL), -EINVAL);
	assert_int_equal(try_create(longname, two, NULL, 2, NULL), -EINVAL);
	assert_int_equal(try_create("d", two, same, 2, NULL), -EINVAL);
	assert_int_equal(try_create("d", two, bad, 1, NULL), -EINVAL);
	assert_int_equal(try_create("d", none, NULL, 1, NULL), -ENODEV);
	assert_int_equal(mimo_scsi_dev_create("d", two, NULL, 2, NULL, NULL, &d), -EPERM);

	/* LUN 255, and devices numbered from the lowest free id. */
	assert_int_equal(try_create("a", two, high, 2, &a), 0);
	assert_int_equal(try_create("a", two, NULL, 1, NULL), -EEXIST);
	assert_int_equal(try_create("b", NULL, NULL, 0, &b), 0);
	assert_int_equal(mimo_scsi_dev_get_id(a), 0);
	assert_int_equal(mimo_scsi_dev_get_id(b), 1);
	assert_string_equal(mimo_scsi_dev_get_name(b), "b");
	assert_string_equal(mimo_scsi_dev_get_lun_bdev(a, 255), "D0");
	ut_clear_ua(a, 255);
	assert_int_equal(tur(a, 255, &c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(tur(b, 0, &c), MIMO_SCSI_STATUS_CHECK_CONDITION);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
	assert_int_equal(add_lun(b, "D0", 0), 0); /* a bdev may back LUNs of two devices */
	assert_int_equal(add_lun(b, "D1", 0), -EEXIST);
	assert_int_equal(add_lun(b, "nope", 1), -ENODEV);
	assert_int_equal(add_lun(b, "D1", 256), -EINVAL);
	assert_int_equal(mimo_scsi_dev_add_lun(b, "D1", 2), -EPERM); /* not the owner */
	ut_dev_destroy(a);
	assert_int_equal(try_create("c", two, NULL, 1, &a), 0);
	assert_int_equal(mimo_scsi_dev_get_id(a), 0);
	ut_dev_destroy(a);
	ut_dev_destroy(b);
	assert_int_equal(ut_delete_bdev("D0"), 0);
	assert_int_equal(ut_delete_bdev("D1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unit_attention_order),
		cmocka_unit_test(test_hot_remove),
		cmocka_unit_test(test_task_management),
		cmocka_unit_test(test_caw_gate),
		cmocka_unit_test(test_caw_concurrent_increments),
		cmocka_unit_test(test_readonly_and_errors),
		cmocka_unit_test(test_devices),
	};

	return cmocka_run_group_tests(tests, ut_setup_reactors, ut_teardown_reactors);
}
