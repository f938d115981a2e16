/*
 * bdev_nvme_send_cmd: a raw NVMe command to an attached controller, SPDK's parameters and
 * answer: the 64-byte command and the data in URL-safe base64, the 16-byte completion (and
 * data read) back the same way. Admin commands go on the admin queue, I/O commands on
 * reactor 0's I/O queue pair of the controller (its channel). The data direction follows
 * the opcode, as in SPDK; data_direction says whether data comes back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "bdev_nvme_internal.h"
#include "bdev_nvme_priv.h"
#include "compiler.h"
#include "mimo/jsonrpc.h"
#include "nvme_internal.h"

#define MAX_DATA (16u << 20) /* what one RPC may move */

struct send_params {
	char *name;
	char *cmd_type;
	char *data_direction;
	char *cmdbuf;
	uint32_t timeout_ms;
	uint32_t data_len;
	uint32_t metadata_len;
	char *data;
	char *metadata;
};

static const struct mimo_json_decoder send_decoders[] = {
	{ "name", offsetof(struct send_params, name), mimo_json_decode_string, false },
	{ "cmd_type", offsetof(struct send_params, cmd_type), mimo_json_decode_string, false },
	{ "data_direction", offsetof(struct send_params, data_direction), mimo_json_decode_string,
	  false },
	{ "cmdbuf", offsetof(struct send_params, cmdbuf), mimo_json_decode_string, false },
	{ "timeout_ms", offsetof(struct send_params, timeout_ms), mimo_json_decode_uint32, true },
	{ "data_len", offsetof(struct send_params, data_len), mimo_json_decode_uint32, true },
	{ "metadata_len", offsetof(struct send_params, metadata_len), mimo_json_decode_uint32,
	  true },
	{ "data", offsetof(struct send_params, data), mimo_json_decode_string, true },
	{ "metadata", offsetof(struct send_params, metadata), mimo_json_decode_string, true },
};

struct send_ctx {
	struct mimo_jsonrpc_request *req;
	struct mimo_io_channel *ioch; /* I/O commands: reactor 0's channel, held until done */
	bool c2h;
	uint8_t *buf;
	uint32_t len;
};

/* URL-safe base64 (RFC 4648 §5, SPDK's) into bytes; the length, or -EINVAL. */
static long decode_urlsafe(const char *text, uint8_t **out)
{
	size_t n = strlen(text);
	char *std = strdup(text);
	long len;

	*out = NULL;
	if (std == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		std[i] = std[i] == '-' ? '+' : std[i] == '_' ? '/' : std[i];
	*out = malloc(n / 4 * 3 + 3);
	len = *out != NULL ? mimo_base64_decode(std, n, *out) : -ENOMEM;
	free(std);
	if (len < 0) {
		free(*out);
		*out = NULL;
	}
	return len;
}

static json_t *encode_urlsafe(const void *data, size_t len)
{
	char *text = malloc(mimo_base64_encoded_size(len));
	json_t *s;

	if (text == NULL)
		return NULL;
	mimo_base64_encode(data, len, text);
	for (char *c = text; *c != '\0'; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	s = json_string(text);
	free(text);
	return s;
}

static void send_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct send_ctx *c = arg;
	json_t *o = json_object();

	json_object_set_new(o, "cpl", encode_urlsafe(cpl, sizeof(*cpl)));
	if (c->c2h && c->len > 0)
		json_object_set_new(o, "data", encode_urlsafe(c->buf, c->len));
	mimo_jsonrpc_send_result(c->req, o);
	if (c->ioch != NULL)
		mimo_put_io_channel(c->ioch);
	free(c->buf);
	free(c);
}

static struct nvme_bdev_ctrlr *find(const char *name)
{
	struct nvme_bdev_ctrlr *nbc;

	TAILQ_FOREACH(nbc, &g_bdev_nvme_ctrlrs, link)
	{
		if (nbc->mp_primary == NULL && strcmp(nbc->name, name) == 0 &&
		    nbc->state != NBC_CONNECTING)
			return nbc;
	}
	return NULL;
}

/* Parameters into the context and command; answers and returns false when they are not. */
static bool prepare(struct mimo_jsonrpc_request *req, const struct send_params *p,
		    struct send_ctx *c, struct mimo_nvme_cmd *cmd)
{
	uint8_t *raw;
	long n;

	if (strcmp(p->data_direction, "c2h") != 0 && strcmp(p->data_direction, "h2c") != 0) {
		mimo_jsonrpc_send_error(req, -EINVAL, "data_direction: c2h or h2c");
		return false;
	}
	c->c2h = strcmp(p->data_direction, "c2h") == 0;
	if (p->metadata_len != 0 || p->metadata != NULL) {
		mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
					"metadata: mimo's namespaces have none (no separate "
					"metadata buffer over NVMe/TCP)");
		return false;
	}
	n = decode_urlsafe(p->cmdbuf, &raw);
	if (n != (long)sizeof(*cmd)) {
		free(raw);
		mimo_jsonrpc_send_error(req, -EINVAL,
					"cmdbuf: the 64-byte command in URL-safe base64");
		return false;
	}
	memcpy(cmd, raw, sizeof(*cmd));
	free(raw);
	if (p->data != NULL) {
		n = decode_urlsafe(p->data, &c->buf);
		if (n < 0 || (p->data_len != 0 && (uint32_t)n != p->data_len)) {
			mimo_jsonrpc_send_error(req, -EINVAL,
						"data: URL-safe base64 of data_len bytes");
			return false;
		}
		c->len = (uint32_t)n;
	} else if (p->data_len != 0) {
		if (p->data_len > MAX_DATA) {
			mimo_jsonrpc_send_error(req, -EINVAL, "data_len: at most %u", MAX_DATA);
			return false;
		}
		c->buf = calloc(1, p->data_len);
		if (c->buf == NULL) {
			mimo_jsonrpc_send_errno(req, -ENOMEM);
			return false;
		}
		c->len = p->data_len;
	}
	return true;
}

static void rpc_bdev_nvme_send_cmd(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct send_params p = { 0 };
	struct mimo_nvme_cmd cmd;
	struct nvme_bdev_ctrlr *nbc;
	struct send_ctx *c;
	bool io;
	int rc;

	if (!mimo_rpc_decode(req, params, send_decoders, MIMO_COUNTOF(send_decoders), &p))
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		goto out;
	}
	c->req = req;
	io = strcmp(p.cmd_type, "io") == 0;
	nbc = find(p.name);
	if (!io && strcmp(p.cmd_type, "admin") != 0) {
		mimo_jsonrpc_send_error(req, -EINVAL, "cmd_type: admin or io");
		rc = 0;
	} else if (nbc == NULL) {
		mimo_jsonrpc_send_error(req, -ENODEV, "No such controller: %s", p.name);
		rc = 0;
	} else if (!prepare(req, &p, c, &cmd)) {
		rc = 0;
	} else if (nbc->state != NBC_ENABLED || !mimo_nvme_ctrlr_is_connected(nbc->ctrlr)) {
		rc = -ENXIO;
	} else if (!io) {
		rc = mimo_nvme_ctrlr_cmd_admin_raw(nbc->ctrlr, &cmd, c->buf, c->len, send_done, c);
		if (rc == 0)
			c = NULL; /* send_done's */
	} else {
		struct nvme_channel *ch;

		c->ioch = mimo_get_io_channel(nbc);
		ch = c->ioch != NULL ? mimo_io_channel_get_ctx(c->ioch) : NULL;
		rc = ch == NULL || ch->qp == NULL
			     ? -ENXIO
			     : mimo_nvme_ctrlr_cmd_io_raw(nbc->ctrlr, ch->qp, &cmd, c->buf, c->len,
							  send_done, c);
		if (rc == 0)
			c = NULL; /* the channel's poller reaps it: send_done */
	}
	if (rc != 0)
		mimo_jsonrpc_send_error(req, rc, "Failed to send the command: %s", strerror(-rc));
	if (c != NULL) {
		if (c->ioch != NULL)
			mimo_put_io_channel(c->ioch);
		free(c->buf);
		free(c);
	}
out:
	mimo_json_decode_free(send_decoders, MIMO_COUNTOF(send_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_nvme_send_cmd", rpc_bdev_nvme_send_cmd, MIMO_RPC_RUNTIME },
};

void bdev_nvme_passthru_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
