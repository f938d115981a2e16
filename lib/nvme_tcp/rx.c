/*
 * Receiving NVMe/TCP PDUs.
 *
 * Headers are gathered in a staging buffer; data goes where on_header says. While data is
 * owed, one readv fills the rest of the destination, then the data digest, then staging with
 * whatever follows, so a transfer lands in place and the PDUs behind it cost no extra call.
 * Data that arrived in staging ahead of its header being parsed is copied out once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compiler.h"
#include "copy.h"
#include "nvme_tcp.h"

static int rx_init(struct mimo_tcp_rx *rx, bool host, uint32_t max_data_len, uint32_t staging)
{
	memset(rx, 0, sizeof(*rx));
	rx->host = host;
	rx->max_data_len = max_data_len;
	rx->state = MIMO_TCP_RX_HEADER;
	rx->buf = malloc(staging);
	rx->buf_size = staging;
	return rx->buf != NULL ? 0 : -ENOMEM;
}

int mimo_tcp_rx_init(struct mimo_tcp_rx *rx, bool host, uint32_t max_data_len)
{
	return rx_init(rx, host, max_data_len, MIMO_TCP_RX_STAGING);
}

int mimo_tcp_rx_init_small(struct mimo_tcp_rx *rx, bool host, uint32_t max_data_len)
{
	return rx_init(rx, host, max_data_len, MIMO_TCP_RX_STAGING_MIN);
}

int mimo_tcp_rx_grow(struct mimo_tcp_rx *rx)
{
	uint8_t *buf;

	if (rx->buf_size >= MIMO_TCP_RX_STAGING)
		return 0;
	/* What is staged moves along: bytes behind the ICReq are not lost. */
	buf = realloc(rx->buf, MIMO_TCP_RX_STAGING);
	if (buf == NULL)
		return -ENOMEM;
	rx->buf = buf;
	rx->buf_size = MIMO_TCP_RX_STAGING;
	return 0;
}

void mimo_tcp_rx_fini(struct mimo_tcp_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
}

static int fail(struct mimo_tcp_rx *rx, uint16_t fes, uint32_t fei)
{
	rx->fes = fes;
	rx->fei = fei;
	return -EPROTO;
}

/*
 * Check the common header once its first 8 bytes are in: the type must be one this end
 * receives, with the length the specification fixes, digest flags as negotiated, and
 * lengths that add up. Sets *hdr_len (header + digest). Returns 0 or -EPROTO.
 */
static int check_ch(struct mimo_tcp_rx *rx, const struct mimo_nvme_tcp_ch *ch, uint32_t *hdr_len)
{
	uint8_t type = ch->pdu_type;
	uint8_t hlen = mimo_tcp_pdu_hlen(type);
	bool ic = type == MIMO_NVME_TCP_IC_REQ || type == MIMO_NVME_TCP_IC_RESP;
	bool term = type == MIMO_NVME_TCP_H2C_TERM_REQ || type == MIMO_NVME_TCP_C2H_TERM_REQ;
	bool hd = false, dd = false;
	uint32_t front, data_off = 0;

	if (hlen == 0 || mimo_tcp_pdu_from_host(type) == rx->host)
		return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
			    offsetof(struct mimo_nvme_tcp_ch, pdu_type));
	if (ch->hlen != hlen)
		return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
			    offsetof(struct mimo_nvme_tcp_ch, hlen));
	if (!ic && !term) {
		hd = (ch->flags & MIMO_NVME_TCP_FLAG_HDGST) != 0;
		dd = (ch->flags & MIMO_NVME_TCP_FLAG_DDGST) != 0;
		if (hd != rx->hdgst || (dd && !rx->ddgst))
			return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
				    offsetof(struct mimo_nvme_tcp_ch, flags));
	}
	front = hlen + (hd ? MIMO_NVME_TCP_DIGEST_LEN : 0);
	if (ch->plen < front)
		return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
			    offsetof(struct mimo_nvme_tcp_ch, plen));
	if (ch->plen == front) {
		/* No data: PDO must be zero and so must the data digest flag. */
		if (ch->pdo != 0 || dd)
			return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
				    offsetof(struct mimo_nvme_tcp_ch, pdo));
	} else {
		uint32_t dlen;

		if (!mimo_tcp_pdu_has_data(type))
			return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
				    offsetof(struct mimo_nvme_tcp_ch, plen));
		data_off = ch->pdo;
		/* TermReqs carry no digests and their data follows the header: PDO 0 there
		 * means "right after it" (SPDK and Linux send it so). */
		if (term && data_off == 0)
			data_off = front;
		if (data_off < front || data_off >= ch->plen)
			return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
				    offsetof(struct mimo_nvme_tcp_ch, pdo));
		if (rx->ddgst && !dd && !term)
			return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
				    offsetof(struct mimo_nvme_tcp_ch, flags));
		dlen = ch->plen - data_off;
		if (dd) {
			if (dlen <= MIMO_NVME_TCP_DIGEST_LEN)
				return fail(rx, MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD,
					    offsetof(struct mimo_nvme_tcp_ch, plen));
			dlen -= MIMO_NVME_TCP_DIGEST_LEN;
		}
		if (term ? dlen > MIMO_NVME_TCP_TERM_REQ_DATA_MAX : dlen > rx->max_data_len)
			return fail(rx, MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED, 0);
	}
	*hdr_len = front;
	rx->data_off = data_off;
	return 0;
}

/* A whole header (and digest) is in pdu.hdr: verify it, ask where its data goes. */
static int start_pdu(struct mimo_tcp_rx *rx, const struct mimo_tcp_rx_ops *ops, void *ctx)
{
	struct mimo_tcp_rx_pdu *pdu = &rx->pdu;
	const struct mimo_nvme_tcp_ch *ch = &pdu->hdr.ch;
	uint32_t fei = 0;
	int rc;

	if (rx->hdr_len > ch->hlen) {
		uint32_t want = mimo_tcp_digest(pdu->hdr.raw, ch->hlen), got;

		memcpy(&got, pdu->hdr.raw + ch->hlen, sizeof(got));
		if (want != got)
			return fail(rx, MIMO_NVME_TCP_FES_HDGST_ERROR, 0);
	}
	pdu->data = NULL;
	pdu->arg = NULL;
	pdu->data_cold = false;
	pdu->ddgst_ok = true;
	pdu->data_len = 0;
	rx->pad_left = 0;
	if (ch->plen > rx->hdr_len) {
		pdu->data_len =
			ch->plen - rx->data_off -
			((ch->flags & MIMO_NVME_TCP_FLAG_DDGST) ? MIMO_NVME_TCP_DIGEST_LEN : 0);
		rx->pad_left = rx->data_off - rx->hdr_len;
	}
	rc = ops->on_header(ctx, pdu, &fei);
	if (rc > 0)
		return fail(rx, (uint16_t)rc, fei);
	if (rc < 0)
		return rc;
	if (pdu->data_len != 0)
		rx->large = pdu->data_len >= MIMO_TCP_RX_LARGE_DATA;
	if (pdu->data_len != 0 && pdu->data == NULL) {
		if (pdu->data_len > sizeof(rx->scratch))
			return fail(rx, MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED, 0);
		pdu->data = rx->scratch;
	}
	rx->data_done = 0;
	rx->ddgst_done = 0;
	rx->state = MIMO_TCP_RX_DATA;
	return 0;
}

static uint32_t ddgst_len(const struct mimo_tcp_rx *rx)
{
	return (rx->pdu.hdr.ch.flags & MIMO_NVME_TCP_FLAG_DDGST) && rx->pdu.data_len != 0
		       ? MIMO_NVME_TCP_DIGEST_LEN
		       : 0;
}

/* Every data byte and digest byte is in: check the digest and hand the PDU over. */
static int finish_pdu(struct mimo_tcp_rx *rx, const struct mimo_tcp_rx_ops *ops, void *ctx)
{
	struct mimo_tcp_rx_pdu *pdu = &rx->pdu;
	uint32_t fei = 0;
	int rc;

	if (ddgst_len(rx) != 0) {
		uint32_t want = mimo_tcp_digest(pdu->data, pdu->data_len), got;

		memcpy(&got, rx->ddgst_recv, sizeof(got));
		pdu->ddgst_ok = want == got;
	}
	rx->state = MIMO_TCP_RX_HEADER;
	rc = ops->on_pdu(ctx, pdu, &fei);
	if (rc > 0)
		return fail(rx, (uint16_t)rc, fei);
	return rc;
}

/* Parse what staging holds. Returns 0 when it needs more bytes, or an error. */
static int process(struct mimo_tcp_rx *rx, const struct mimo_tcp_rx_ops *ops, void *ctx)
{
	for (;;) {
		uint32_t avail = rx->tail - rx->head, n;
		int rc;

		if (rx->state == MIMO_TCP_RX_HEADER) {
			uint32_t hdr_len;

			if (avail < sizeof(struct mimo_nvme_tcp_ch))
				return 0;
			/* Checked before the rest arrives, so a bad length never makes us wait. */
			memcpy(&rx->pdu.hdr.ch, rx->buf + rx->head, sizeof(rx->pdu.hdr.ch));
			rc = check_ch(rx, &rx->pdu.hdr.ch, &hdr_len);
			if (rc != 0)
				return rc;
			if (avail < hdr_len)
				return 0;
			memcpy(rx->pdu.hdr.raw, rx->buf + rx->head, hdr_len);
			rx->head += hdr_len;
			rx->hdr_len = hdr_len;
			rc = start_pdu(rx, ops, ctx);
			if (rc != 0)
				return rc;
			continue;
		}
		/* Data: padding first, then the bytes, then the digest. */
		n = MIMO_MIN(rx->pad_left, avail);
		rx->head += n;
		rx->pad_left -= n;
		avail -= n;
		if (rx->pad_left != 0)
			return 0;
		n = MIMO_MIN(rx->pdu.data_len - rx->data_done, avail);
		if (n != 0 && rx->pdu.data_cold)
			mimo_copy_cold((uint8_t *)rx->pdu.data + rx->data_done, rx->buf + rx->head,
				       n);
		else if (n != 0) /* a PDU without data has no destination */
			memcpy((uint8_t *)rx->pdu.data + rx->data_done, rx->buf + rx->head, n);
		rx->staged_data += n;
		rx->data_done += n;
		rx->head += n;
		avail -= n;
		if (rx->data_done < rx->pdu.data_len)
			return 0;
		n = MIMO_MIN(ddgst_len(rx) - rx->ddgst_done, avail);
		memcpy(rx->ddgst_recv + rx->ddgst_done, rx->buf + rx->head, n);
		rx->ddgst_done += n;
		rx->head += n;
		if (rx->ddgst_done < ddgst_len(rx))
			return 0;
		rc = finish_pdu(rx, ops, ctx);
		if (rc != 0)
			return rc;
	}
}

static void compact(struct mimo_tcp_rx *rx)
{
	if (rx->head == rx->tail) {
		rx->head = rx->tail = 0;
	} else if (rx->head != 0) {
		memmove(rx->buf, rx->buf + rx->head, rx->tail - rx->head);
		rx->tail -= rx->head;
		rx->head = 0;
	}
}

int mimo_tcp_rx_read(struct mimo_tcp_rx *rx, struct mimo_tcp_sock *sk,
		     const struct mimo_tcp_rx_ops *ops, void *ctx)
{
	ssize_t total = 0;

	rx->tls_held = false;
	for (;;) {
		struct iovec iov[3];
		int cnt = 0, rc;
		size_t left, asked = 0;
		ssize_t n;

		compact(rx);
		/* Data owed and nothing staged ahead of it: read it in place. */
		if (rx->state == MIMO_TCP_RX_DATA && rx->pad_left == 0 && rx->head == rx->tail) {
			if (rx->data_done < rx->pdu.data_len) {
				iov[cnt].iov_base = (uint8_t *)rx->pdu.data + rx->data_done;
				iov[cnt++].iov_len = rx->pdu.data_len - rx->data_done;
			}
			if (rx->ddgst_done < ddgst_len(rx)) {
				iov[cnt].iov_base = rx->ddgst_recv + rx->ddgst_done;
				iov[cnt++].iov_len = ddgst_len(rx) - rx->ddgst_done;
			}
		}
		iov[cnt].iov_base = rx->buf + rx->tail;
		iov[cnt++].iov_len = rx->buf_size - rx->tail;
		if (rx->large && iov[cnt - 1].iov_len > MIMO_TCP_RX_AHEAD)
			iov[cnt - 1].iov_len = MIMO_TCP_RX_AHEAD;
		n = mimo_tcp_sock_readv(sk, iov, cnt);
		if (n < 0) {
			if (total != 0)
				break;
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		left = (size_t)n;
		for (int i = 0; i < cnt - 1 && left != 0; i++) {
			size_t k = MIMO_MIN(left, iov[i].iov_len);

			if (iov[i].iov_base == rx->ddgst_recv + rx->ddgst_done)
				rx->ddgst_done += (uint32_t)k;
			else
				rx->data_done += (uint32_t)k;
			left -= k;
		}
		rx->tail += (uint32_t)left;
		rc = process(rx, ops, ctx);
		if (rc < 0)
			return rc;
		total += n;
		/* Plain TCP: one readv a call. TLS: what OpenSSL decrypted or read ahead beyond
		 * the buffers would wait for the socket to become readable again, maybe forever:
		 * read it now (only a read that filled every buffer can have left some) - or,
		 * with one_read, leave it to the caller's next turn (tls_held). */
		if (mimo_likely(sk->tls == NULL))
			break;
		for (int i = 0; i < cnt; i++)
			asked += iov[i].iov_len;
		if ((size_t)n < asked || !mimo_tls_pending(sk->tls))
			break;
		if (rx->one_read) {
			rx->tls_held = true;
			break;
		}
	}
	/* TLS, in the middle of a PDU: acknowledge now. A peer with a small send buffer (SPDK's
	 * ssl socket layer has 4 KiB by default) sends the rest of a PDU only once what it sent
	 * is acknowledged, and Linux delays that ACK (about 40 ms) while this side has nothing
	 * to send: every PDU longer than a record or two stalled that long (64 KiB writes from
	 * spdk_nvme_perf: 22 IOPS). The kernel clears the flag by itself, so it is set on each
	 * such read; plain TCP peers keep large buffers and are left alone. */
	if (sk->tls != NULL && total > 0 &&
	    (rx->state == MIMO_TCP_RX_DATA || rx->tail != rx->head)) {
		int one = 1;

		(void)setsockopt(sk->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	}
	return (int)MIMO_MIN(total, (ssize_t)INT32_MAX);
}

int mimo_tcp_rx_feed(struct mimo_tcp_rx *rx, const void *data, size_t len,
		     const struct mimo_tcp_rx_ops *ops, void *ctx)
{
	const uint8_t *p = data;

	/*
	 * Nothing staged: parse straight from the caller's bytes (io_uring's receive buffer), so
	 * headers and in-capsule data are copied once, to where they belong, not through
	 * staging first; only an incomplete PDU's tail is staged below. Full staging only: with
	 * the small one, the ICReq's handler grows (reallocates) rx->buf, which is not ours here.
	 */
	if (rx->head == rx->tail && rx->buf_size >= MIMO_TCP_RX_STAGING && len <= UINT32_MAX) {
		uint8_t *staging = rx->buf;
		uint32_t used;
		int rc;

		rx->buf = (uint8_t *)(uintptr_t)p; /* process() only reads it */
		rx->head = 0;
		rx->tail = (uint32_t)len;
		rc = process(rx, ops, ctx);
		used = rx->head;
		rx->buf = staging;
		rx->head = rx->tail = 0;
		if (rc != 0)
			return rc;
		p += used;
		len -= used;
	}
	while (len != 0) {
		size_t n;
		int rc;

		compact(rx);
		n = MIMO_MIN(len, (size_t)(rx->buf_size - rx->tail));
		memcpy(rx->buf + rx->tail, p, n);
		rx->tail += (uint32_t)n;
		p += n;
		len -= n;
		rc = process(rx, ops, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}
