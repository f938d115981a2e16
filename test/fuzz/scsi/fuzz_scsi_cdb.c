/*
 * Fuzz the SCSI layer with whole tasks: any CDB, data direction, transfer length and iovec
 * layout, against LUNs on malloc bdevs of 512- and 4096-byte blocks (and a LUN that does not
 * exist), sometimes with an ABORT TASK or a LOGICAL UNIT RESET racing the command.
 *
 * Input: byte 0 flags (bits 0-1 LUN, bit 2 the second reactor, bit 4 ABORT TASK, bit 5
 * LOGICAL UNIT RESET), byte 1 direction, bytes 2-3 transfer length (little-endian), byte 4
 * iovec count (1-4), bytes 5-7 unused, then the 16 CDB bytes, then the data-out bytes.
 *
 * Properties: nothing crashes, leaks or trips a sanitizer; every task completes, once; the
 * layer reads and writes only inside the iovecs (each is its own allocation, so ASan sees a
 * byte past it), never writes a data-out buffer, and writes a data-in buffer only within
 * what it reports as transferred (unless task management aborted it); status, sense and
 * residual are consistent.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev_malloc.h"
#include "mimo/bdev.h"
#include "mimo/reactor.h"
#include "mimo/scsi.h"
#include "scsi_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR	 8
#define CDB_LEN	 16
#define CANARY	 0xa5
#define MAX_IOVS 4

static struct mimo_scsi_dev *g_dev;
static sem_t g_done;
static int g_rc;

/* libFuzzer's timeout alarm interrupts waits: wait again; a task that never completes is a
 * hang (abort after 10 s, which libFuzzer's own -timeout also catches). */
static void wait_done(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (sem_timedwait(&g_done, &ts) != 0) {
		if (errno != EINTR)
			abort();
	}
}

static void post(void (*fn)(void *), void *arg, uint32_t reactor)
{
	if (mimo_reactor_send_msg(mimo_reactor_get(reactor), fn, arg) != 0)
		abort();
	wait_done();
}

static void setup_on_reactor(void *arg)
{
	static const char *const bdevs[] = { "F0", "F1" };
	struct mimo_bdev *b;

	(void)arg;
	g_rc = bdev_malloc_create("F0", 256, 512, NULL, &b);
	if (g_rc == 0)
		g_rc = bdev_malloc_create("F1", 64, 4096, NULL, &b);
	if (g_rc == 0)
		g_rc = mimo_scsi_dev_create("fuzz", bdevs, NULL, 2, NULL, NULL, &g_dev);
	sem_post(&g_done);
}

/* Between inputs: what a command may have left (mode pages, a stopped unit, unit attentions)
 * goes back to the start, so that each input runs against the same LUNs. */
static void reset_state(void *arg)
{
	(void)arg;
	for (uint32_t id = 0; id < 2; id++) {
		struct scsi_lun *lun = atomic_load(&g_dev->luns[id]);

		atomic_store(&lun->mode, scsi_lun_default_mode(lun));
		atomic_store(&lun->stopped, false);
		atomic_store(&lun->ua, 0);
	}
	sem_post(&g_done);
}

static void all_deleted(void *arg)
{
	(void)arg;
	sem_post(&g_done);
}

static void destroyed(void *arg)
{
	(void)arg;
	mimo_bdev_delete_all(all_deleted, NULL);
}

static void teardown_on_reactor(void *arg)
{
	(void)arg;
	mimo_scsi_dev_destroy(g_dev, destroyed, NULL);
}

static void teardown(void)
{
	if (mimo_reactor_send_msg(mimo_reactor_get(0), teardown_on_reactor, NULL) == 0)
		wait_done();
	mimo_reactors_stop();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mimo_reactor_opts o;

	(void)argc;
	(void)argv;
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	if (getenv("MIMO_LOG") == NULL)
		setenv("MIMO_LOG", "error", 1);
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_done, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x3;
	if (mimo_reactors_start(&o) != 0) {
		o.core_mask = 0x1;
		if (mimo_reactors_start(&o) != 0)
			abort();
	}
	post(setup_on_reactor, NULL, 0);
	if (g_rc != 0)
		abort();
	atexit(teardown);
	return 0;
}

/* --- one input -----------------------------------------------------------------------------------
 */

struct run {
	struct mimo_scsi_task task;
	struct iovec iov[MAX_IOVS];
	int completions;
	uint8_t tmf;
	int tmf_answers;
};

static void task_done(struct mimo_scsi_task *task)
{
	struct run *r = task->cb_arg;

	r->completions++;
	sem_post(&g_done);
}

static void tmf_done(void *arg, enum mimo_scsi_tmf_response resp)
{
	struct run *r = arg;

	if (resp != MIMO_SCSI_TMF_RESP_COMPLETE && resp != MIMO_SCSI_TMF_RESP_INCORRECT_LUN)
		abort();
	r->tmf_answers++;
	sem_post(&g_done);
}

static void submit(void *arg)
{
	struct run *r = arg;

	mimo_scsi_dev_submit(g_dev, &r->task);
	if (r->completions != 0)
		abort(); /* never inside the submission */
	/* Task management right behind the command, on the same reactor: it finds the task
	 * in whatever state the submission left it (in the bdev, parked, about to complete). */
	if (r->tmf != 0 && mimo_scsi_dev_task_mgmt(g_dev,
						   r->tmf == 1 ? MIMO_SCSI_TMF_ABORT_TASK
							       : MIMO_SCSI_TMF_LOGICAL_UNIT_RESET,
						   r->task.lun, r->task.tag, tmf_done, r) != 0)
		abort();
}

static bool valid_status(uint8_t s)
{
	return s == MIMO_SCSI_STATUS_GOOD || s == MIMO_SCSI_STATUS_CHECK_CONDITION ||
	       s == MIMO_SCSI_STATUS_TASK_ABORTED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	uint8_t *copy[MAX_IOVS] = { 0 };
	uint32_t len, per, total = 0;
	int niov;
	const uint8_t *payload;
	size_t plen;

	if (size < HDR + CDB_LEN)
		return 0;
	memset(&r, 0, sizeof(r));
	mimo_scsi_task_init(&r.task);
	r.task.lun = data[0] & 0x03; /* LUN 2 and 3 do not exist */
	r.task.dir = (enum mimo_scsi_dir)(data[1] % 3);
	len = (uint32_t)data[2] | (uint32_t)data[3] << 8;
	niov = 1 + data[4] % MAX_IOVS;
	r.tmf = (data[0] & 0x20) ? 2 : (data[0] & 0x10) ? 1 : 0;
	memcpy(r.task.cdb, data + HDR, CDB_LEN);
	payload = data + HDR + CDB_LEN;
	plen = size - HDR - CDB_LEN;
	r.task.cb = task_done;
	r.task.cb_arg = &r;
	r.task.tag = 42;
	/* The iovecs: niov exact allocations, of uneven sizes (half, then one and a half of
	 * an even share, alternately); data-out from the input, data-in a canary. */
	per = len / (uint32_t)niov;
	for (int i = 0; i < niov; i++) {
		uint32_t n = i == niov - 1 ? len - total : (i % 2 ? per + per / 2 : per / 2);

		if (total + n > len)
			n = len - total;
		r.iov[i].iov_base = malloc(n ? n : 1);
		r.iov[i].iov_len = n;
		for (uint32_t k = 0; k < n; k++) {
			size_t at = total + k;

			((uint8_t *)r.iov[i].iov_base)[k] =
				r.task.dir == MIMO_SCSI_DIR_TO_DEV ? (plen ? payload[at % plen] : 0)
								   : CANARY;
		}
		copy[i] = malloc(n ? n : 1);
		memcpy(copy[i], r.iov[i].iov_base, n);
		total += n;
	}
	r.task.iovs = r.iov;
	r.task.iovcnt = niov;
	r.task.transfer_len = len;

	if (mimo_reactor_send_msg(mimo_reactor_get(((data[0] >> 2) & 1u) % mimo_reactor_count()),
				  submit, &r) != 0)
		abort();
	wait_done();
	if (r.tmf != 0)
		wait_done();
	if (r.completions != 1 || (r.tmf != 0 && r.tmf_answers != 1))
		abort();

	/* Status and sense: CHECK CONDITION and only it has sense, fixed or descriptor. */
	if (!valid_status(r.task.status))
		abort();
	if (r.task.status == MIMO_SCSI_STATUS_CHECK_CONDITION) {
		if (r.task.sense_len < 8 || r.task.sense_len > MIMO_SCSI_SENSE_SIZE ||
		    ((r.task.sense[0] & 0x7f) != 0x70 && (r.task.sense[0] & 0x7f) != 0x72))
			abort();
	} else if (r.task.sense_len != 0) {
		abort();
	}
	/* Transfers: within the transfer length; data-out untouched; data-in written only
	 * within what was transferred; no data-in without a data-in direction. */
	if (r.task.data_transferred > len)
		abort();
	total = 0;
	for (int i = 0; i < niov; i++) {
		const uint8_t *b = r.iov[i].iov_base;

		for (uint32_t k = 0; k < r.iov[i].iov_len; k++) {
			if (r.task.dir == MIMO_SCSI_DIR_FROM_DEV) {
				/* An aborted read may have filled its buffer before the
				 * abort: it reports nothing transferred all the same. */
				if (total + k >= r.task.data_transferred && b[k] != CANARY &&
				    r.task.status != MIMO_SCSI_STATUS_TASK_ABORTED)
					abort();
			} else if (b[k] != copy[i][k]) {
				abort();
			}
		}
		total += (uint32_t)r.iov[i].iov_len;
		free(r.iov[i].iov_base);
		free(copy[i]);
	}
	if (r.task.status == MIMO_SCSI_STATUS_GOOD &&
	    r.task.residual_kind == MIMO_SCSI_RESIDUAL_UNDERFLOW &&
	    r.task.data_transferred + r.task.residual != len)
		abort();
	post(reset_state, NULL, 0);
	return 0;
}
