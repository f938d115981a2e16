/*
 * The NVMe/TCP transport's secure channel: a secure port's connections start with TLS 1.3
 * with a PSK (lib/nvme_tcp/tls.h) before any PDU. The PSKs are the core's (the hosts a
 * subsystem gave one, nvmf_tgt_psk_get); what a PSK becomes in TLS, the handshake and the
 * socket are this transport's. Once the channel is up, the core learns whose key it was
 * (qp->core.secure_hostnqn / secure_subnqn) and checks the Connect against it.
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/epoll.h>

#include "keyring.h"
#include "log.h"
#include "tcp_internal.h"

#define COMP "nvmf_tcp"

static struct mimo_ratelimit g_tls_rl;

int nvmf_tcp_tls_listen(struct nvmf_tcp_transport *tt)
{
	if (tt->tls == NULL)
		tt->tls = mimo_tls_server_ctx_new();
	return tt->tls != NULL ? 0 : -ENOMEM;
}

/* The handshake asks which PSK a client's identity names (on this queue pair's reactor). */
static int psk_lookup(void *arg, const struct mimo_tls_identity *id,
		      uint8_t retained[MIMO_TLS_PSK_MAX], size_t *len)
{
	struct nvmf_tcp_qpair *qp = arg;
	struct mimo_key *key = nvmf_tgt_psk_get(qp->tt->core.tgt, id->subnqn, id->hostnqn);
	struct mimo_key_material m;
	int rc;

	if (key == NULL)
		return -ENOKEY;
	/* The file is read now, as for every use of a key (docs/security.md, "Keys"). */
	rc = mimo_key_get_material(key, &m);
	mimo_key_put(key);
	if (rc != 0)
		return rc;
	if (m.kind != MIMO_KEY_TLS_PSK)
		rc = -EKEYREJECTED;
	else
		rc = mimo_tls_retained_psk(m.key, m.len, m.hash, id->hostnqn, retained);
	if (rc == 0)
		*len = m.len;
	mimo_key_material_wipe(&m);
	return rc;
}

int nvmf_tcp_tls_start(struct nvmf_tcp_qpair *qp)
{
	qp->handshake = mimo_tls_new(qp->tt->tls, qp->sock.fd, psk_lookup, qp);
	return qp->handshake != NULL ? 0 : -ENOMEM;
}

/* Anything but TLS with a PSK a host has - plain NVMe/TCP, an identity no host has, a wrong
 * key - closes the connection. */
void nvmf_tcp_tls_step(struct nvmf_tcp_qpair *qp)
{
	const struct nvmf_port *port = qp->core.port;
	const struct mimo_tls_identity *id;
	uint64_t suppressed = 0;
	bool want_write;
	int rc = mimo_tls_handshake(qp->handshake, &want_write);

	if (rc == -EAGAIN) {
		if (want_write != qp->want_out) {
			qp->want_out = want_write;
			mimo_fd_watch_modify(qp->watch, want_write ? EPOLLIN | EPOLLOUT : EPOLLIN);
		}
		return;
	}
	if (rc != 0) {
		if (mimo_ratelimit_allow(&g_tls_rl, 1000000000LL, &suppressed))
			MIMO_WARN(
				COMP,
				"%s:%s: TLS handshake on secure listener %s:%s failed: %s; closing "
				"(%" PRIu64 " more such)",
				qp->core.traddr, qp->core.trsvcid, port->addr.traddr,
				port->addr.trsvcid, mimo_tls_error(qp->handshake), suppressed);
		nvmf_tcp_qpair_close(qp);
		return;
	}
	qp->sock.tls = qp->handshake;
	qp->handshake = NULL;
	id = mimo_tls_peer_identity(qp->sock.tls);
	/* They live in the TLS connection, as long as the queue pair. */
	qp->core.secure_hostnqn = id->hostnqn;
	qp->core.secure_subnqn = id->subnqn;
	MIMO_DEBUG(COMP, "%s:%s: TLS 1.3 (%s), PSK of host %s for %s", qp->core.traddr,
		   qp->core.trsvcid, mimo_tls_cipher(qp->sock.tls), id->hostnqn, id->subnqn);
	if (qp->want_out) {
		qp->want_out = false;
		mimo_fd_watch_modify(qp->watch, EPOLLIN);
	}
	/* The ICReq may have come with the handshake's last flight: OpenSSL holds it already,
	 * and the socket will not say so again. */
	nvmf_tcp_qpair_read(qp);
}

void nvmf_tcp_listener_discover(const struct nvmf_port *port, struct mimo_nvmf_discovery_entry *e)
{
	/* TSAS for TCP: SECTYPE 2 (TLS 1.3) on a secure port, else 0 (none). */
	e->tsas[0] = port->secure ? 2 : 0;
}
