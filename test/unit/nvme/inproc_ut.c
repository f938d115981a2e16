/*
 * Target and initiator in one process, as SPDK's NVMf target API allows: mimo_tgt's libraries
 * on one reactor serve a malloc bdev over NVMe/TCP, bdev_nvme attaches that very subsystem
 * (reactor 0 must never wait on itself), and bdev I/O through Nvme0n1 reaches the malloc
 * bdev: transfers split over MDTS, several iovecs, iovecs that need a bounce buffer, write
 * zeroes, unmap, flush. Then mimo_bdev_nvme_fini detaches everything.
 */
#include <errno.h>
#include <netinet/in.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_malloc.h"
#include "bdev_nvme.h"
#include "mimo/bdev.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvmf.h"
#include "mimo/reactor.h"

#define BS	   512
#define NUM_BLOCKS 8192 /* 4 MiB */

static sem_t g_sem;
static json_t *g_resp;
static struct mimo_nvmf_tgt *g_tgt;

static void wait_sem(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	assert_int_equal(sem_timedwait(&g_sem, &ts), 0);
}

static void post(void *arg)
{
	(void)arg;
	sem_post(&g_sem);
}

static void on_reactor(mimo_msg_fn fn, void *arg)
{
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), fn, arg), 0);
	wait_sem();
}

/* --- JSON-RPC, locally on reactor 0 ------------------------------------------------------ */

static void rpc_cb(void *arg, json_t *resp)
{
	(void)arg;
	g_resp = resp;
	sem_post(&g_sem);
}

static void rpc_msg(void *arg)
{
	json_t *req = arg;

	assert_int_equal(mimo_jsonrpc_call_local(req, rpc_cb, NULL), 0);
	json_decref(req);
}

/* The result (caller frees), or fails the test with the error. */
static json_t *rpc(const char *method, json_t *params)
{
	json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
				"params", params),
	       *res;

	on_reactor(rpc_msg, req);
	if (json_object_get(g_resp, "error") != NULL) {
		char *s = json_dumps(g_resp, 0);

		fail_msg("%s: %s", method, s);
	}
	res = json_incref(json_object_get(g_resp, "result"));
	json_decref(g_resp);
	return res;
}

/* --- bdev I/O on reactor 0 ----------------------------------------------------------------- */

struct io {
	struct mimo_bdev_desc *desc;
	struct mimo_io_channel *ch;
	enum mimo_bdev_io_type type;
	struct iovec iov[4];
	int iovcnt;
	uint64_t off, num;
	int status;
};

static void io_done(struct mimo_bdev_io *bio, bool success, void *arg)
{
	struct io *io = arg;

	io->status = success ? 0 : mimo_bdev_io_get_status(bio);
	mimo_bdev_free_io(bio);
	sem_post(&g_sem);
}

static void io_msg(void *arg)
{
	struct io *io = arg;
	int rc;

	switch (io->type) {
	case MIMO_BDEV_IO_READ:
		rc = mimo_bdev_readv_blocks(io->desc, io->ch, io->iov, io->iovcnt, io->off, io->num,
					    io_done, io);
		break;
	case MIMO_BDEV_IO_WRITE:
		rc = mimo_bdev_writev_blocks(io->desc, io->ch, io->iov, io->iovcnt, io->off,
					     io->num, io_done, io);
		break;
	case MIMO_BDEV_IO_UNMAP:
		rc = mimo_bdev_unmap_blocks(io->desc, io->ch, io->off, io->num, io_done, io);
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(io->desc, io->ch, io->off, io->num, io_done, io);
		break;
	default:
		rc = mimo_bdev_flush_blocks(io->desc, io->ch, io->off, io->num, io_done, io);
		break;
	}
	if (rc != 0) {
		io->status = rc;
		sem_post(&g_sem);
	}
}

static int do_io(struct io *io, enum mimo_bdev_io_type type, uint64_t off, uint64_t num)
{
	io->type = type;
	io->off = off;
	io->num = num;
	on_reactor(io_msg, io);
	return io->status;
}

static void open_msg(void *arg)
{
	struct io *io = arg;

	assert_int_equal(mimo_bdev_open("Nvme0n1", true, NULL, NULL, &io->desc), 0);
	io->ch = mimo_bdev_get_io_channel(io->desc);
	assert_non_null(io->ch);
	sem_post(&g_sem);
}

static void close_msg(void *arg)
{
	struct io *io = arg;

	mimo_put_io_channel(io->ch);
	mimo_bdev_close(io->desc);
	sem_post(&g_sem);
}

/* --- set-up -------------------------------------------------------------------------------- */

static void tgt_create_msg(void *arg)
{
	(void)arg;
	assert_int_equal(mimo_nvmf_tgt_create("nvmf_tgt", NULL, &g_tgt), 0);
	sem_post(&g_sem);
}

static void tgt_destroy_msg(void *arg)
{
	(void)arg;
	mimo_nvmf_tgt_destroy(g_tgt, post, NULL);
}

static void delete_all_msg(void *arg)
{
	(void)arg;
	mimo_bdev_delete_all(post, NULL);
}

static void fini_msg(void *arg)
{
	(void)arg;
	mimo_bdev_nvme_fini(post, NULL);
}

static int unused_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void fill(uint8_t *b, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i / 512 * 31 + i * 7 + seed);
}

static void test_self_attach_io_fini(void **state)
{
	struct mimo_reactor_opts ro;
	const char *nqn = "nqn.2016-06.io.spdk:inproc";
	size_t big = 512 * 1024; /* four times the target's 128 KiB MDTS */
	uint8_t *w = malloc(big), *r = malloc(big);
	struct io io = { 0 };
	char port[16];
	json_t *res;

	(void)state;
	mimo_register_nvmf();
	mimo_register_bdev_nvme();
	mimo_register_bdev_layer();
	mimo_register_bdev_malloc();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&ro);
	assert_int_equal(mimo_reactors_start(&ro), 0);
	mimo_rpc_set_state(MIMO_RPC_RUNTIME);
	on_reactor(tgt_create_msg, NULL);
	snprintf(port, sizeof(port), "%d", unused_port());
	json_decref(
		rpc("bdev_malloc_create", json_pack("{s:s, s:i, s:i}", "name", "Malloc0",
						    "num_blocks", NUM_BLOCKS, "block_size", BS)));
	json_decref(rpc("nvmf_create_transport", json_pack("{s:s}", "trtype", "tcp")));
	json_decref(rpc("nvmf_create_subsystem",
			json_pack("{s:s, s:b}", "nqn", nqn, "allow_any_host", 1)));
	json_decref(rpc("nvmf_subsystem_add_ns", json_pack("{s:s, s:{s:s}}", "nqn", nqn,
							   "namespace", "bdev_name", "Malloc0")));
	json_decref(rpc("nvmf_subsystem_add_listener",
			json_pack("{s:s, s:{s:s, s:s, s:s}}", "nqn", nqn, "listen_address",
				  "trtype", "tcp", "traddr", "127.0.0.1", "trsvcid", port)));

	/* Attach to the subsystem this very reactor serves. */
	res = rpc("bdev_nvme_attach_controller",
		  json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "name", "Nvme0", "trtype", "tcp",
			    "traddr", "127.0.0.1", "trsvcid", port, "subnqn", nqn, "ddgst", 1));
	assert_int_equal(json_array_size(res), 1);
	assert_string_equal(json_string_value(json_array_get(res, 0)), "Nvme0n1");
	json_decref(res);

	on_reactor(open_msg, &io);
	/* One buffer, four commands' worth: split by the module. */
	fill(w, big, 1);
	io.iov[0] = (struct iovec){ w, big };
	io.iovcnt = 1;
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_WRITE, 100, big / BS), 0);
	memset(r, 0, big);
	io.iov[0] = (struct iovec){ r, big };
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_READ, 100, big / BS), 0);
	assert_memory_equal(r, w, big);
	/* Three block-sized iovecs: a command per piece. */
	memset(r, 0, big);
	io.iov[0] = (struct iovec){ r, 1024 };
	io.iov[1] = (struct iovec){ r + 1024, 4096 };
	io.iov[2] = (struct iovec){ r + 5120, 3072 };
	io.iovcnt = 3;
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_READ, 100, 16), 0);
	assert_memory_equal(r, w, 8192);
	/* Iovecs that cut blocks: through a bounce buffer, both ways. */
	fill(w, 8192, 9);
	io.iov[0] = (struct iovec){ w, 100 };
	io.iov[1] = (struct iovec){ w + 100, 8000 };
	io.iov[2] = (struct iovec){ w + 8100, 92 };
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_WRITE, 5000, 16), 0);
	memset(r, 0, 8192);
	io.iov[0] = (struct iovec){ r, 700 };
	io.iov[1] = (struct iovec){ r + 700, 7492 };
	io.iovcnt = 2;
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_READ, 5000, 16), 0);
	assert_memory_equal(r, w, 8192);
	/* Write zeroes, deallocate, flush. */
	io.iov[0] = (struct iovec){ r, 8192 };
	io.iovcnt = 1;
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_WRITE_ZEROES, 5000, 16), 0);
	memset(r, 0xff, 8192);
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_READ, 5000, 16), 0);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(r[i], 0);
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_UNMAP, 0, NUM_BLOCKS), 0);
	assert_int_equal(do_io(&io, MIMO_BDEV_IO_FLUSH, 0, NUM_BLOCKS), 0);
	/* Beyond the end: the bdev layer refuses it before the module sees it. */
	assert_int_not_equal(do_io(&io, MIMO_BDEV_IO_READ, NUM_BLOCKS, 1), 0);
	on_reactor(close_msg, &io);

	/* Shutdown: every controller detached, its bdevs gone, only the malloc bdev left. */
	on_reactor(fini_msg, NULL);
	res = rpc("bdev_nvme_get_controllers", json_object());
	assert_int_equal(json_array_size(res), 0);
	json_decref(res);
	res = rpc("bdev_get_bdevs", json_object());
	assert_int_equal(json_array_size(res), 1);
	json_decref(res);
	/* Nothing left to detach: at once. */
	on_reactor(fini_msg, NULL);

	on_reactor(tgt_destroy_msg, NULL);
	on_reactor(delete_all_msg, NULL);
	mimo_reactors_stop();
	sem_destroy(&g_sem);
	free(w);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_attach_io_fini),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
