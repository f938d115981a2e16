/*
 * The boundary between the target's core and its transports, shaped as SPDK's
 * spdk_nvmf_transport_ops and the kernel's nvmet_fabrics_ops. A transport moves commands,
 * data and responses; the core decides what a command is (request.c) and runs it.
 *
 * A transport's own structures embed the core's (nvmf_internal.h) as their member "core":
 * struct nvmf_transport, nvmf_port, nvmf_poll_group, nvmf_qpair and nvmf_req, and find
 * themselves again with mimo_container_of. The life of a command:
 *   transport: a command arrived        -> nvmf_req_init (state and form checks)
 *   transport: its data is in place     -> nvmf_req_exec (admin / Fabrics / I/O dispatch)
 *   core: the command is done           -> ops->queue_response (send, then release)
 */
#ifndef MIMO_NVMF_TRANSPORT_H
#define MIMO_NVMF_TRANSPORT_H

#include <jansson.h>

#include "nvmf_internal.h"

struct nvmf_transport_ops {
	const char *name; /* "TCP", "loop": trtype in RPCs and listen addresses (any case) */
	uint8_t trtype;	  /* the discovery and error log's TRTYPE */
	/* Check the options and allocate the transport (a struct embedding nvmf_transport,
	 * zeroed, with opts set). free: its queue pairs, ports and poll groups are gone. */
	int (*create)(struct mimo_nvmf_tgt *tgt, const struct mimo_nvmf_transport_opts *opts,
		      struct nvmf_transport **out);
	void (*free)(struct nvmf_transport *tt);
	/* A poll group for the calling reactor (a struct embedding nvmf_poll_group; the core
	 * initializes that part), and its end there once the transport's queue pairs are gone. */
	struct nvmf_poll_group *(*poll_group_create)(struct nvmf_transport *tt);
	void (*poll_group_destroy)(struct nvmf_poll_group *pg);
	/* Fill in the defaults of a listen address; -EINVAL for one the transport cannot take. */
	int (*listen_addr_check)(struct mimo_nvmf_listen_addr *addr);
	/* Start listening at addr (its port "0" becomes the one picked): a struct embedding
	 * nvmf_port. An option the transport cannot honour (a secure channel where it has
	 * none) is -EINVAL with a log line saying why. stop_listen: take no more connections;
	 * the transport frees the port (after nvmf_port_unlink) once its last connection is
	 * gone. On the target's reactor. */
	int (*listen)(struct nvmf_transport *tt, struct mimo_nvmf_listen_addr *addr,
		      const struct mimo_nvmf_listener_opts *opts, struct nvmf_port **out);
	void (*stop_listen)(struct nvmf_port *port);
	/* Optional: fill what the discovery log entry of port says in the transport's own terms
	 * (TSAS); the core fills the rest. */
	void (*listener_discover)(const struct nvmf_port *port,
				  struct mimo_nvmf_discovery_entry *e);
	/* The request is done (req->cpl final, cid/sqid/sqhd filled in): send its data and
	 * response, then release it - or release it at once on a closing queue pair. On the
	 * queue pair's reactor. */
	void (*queue_response)(struct nvmf_req *req);
	/* Close the queue pair (on its reactor): requests that wait on the transport end, the
	 * others come back through queue_response; then nvmf_qpair_leave_ctrlr and
	 * nvmf_qpair_try_free. */
	void (*qpair_close)(struct nvmf_qpair *qp);
	/* Nothing refers to the queue pair any more: free it (on its reactor). */
	void (*qpair_free)(struct nvmf_qpair *qp);
	/* Optional: the queue pair is past Connect (and authentication, when required). */
	void (*qpair_connected)(struct nvmf_qpair *qp);
	/* nvmf_get_transports (config false) and save_config (true): what the transport adds to
	 * the common options. */
	void (*dump)(const struct nvmf_transport *tt, json_t *j, bool config);
	/* save_config re-creates it (nvmf_create_transport takes it), and its listeners. */
	bool in_config;
};

/* The core's part of a transport. On the target's reactor unless said otherwise. */
struct nvmf_transport {
	const struct nvmf_transport_ops *ops;
	struct mimo_nvmf_tgt *tgt;
	struct mimo_nvmf_transport_opts opts;
	TAILQ_HEAD(, nvmf_port) ports; /* open, and closed with connections left */
	uint16_t next_portid;
	struct nvmf_poll_group *groups[NVMF_MAX_REACTORS]; /* each its reactor's */
	atomic_uint num_qpairs; /* counted by the transport from accept to free (any thread) */
	atomic_bool destroying;
	atomic_uint groups_left;
	void (*destroy_cb)(void *arg);
	void *destroy_arg;
	TAILQ_ENTRY(nvmf_transport) link;
};

/* This reactor's poll group of tt, made on first use; NULL when out of memory. */
struct nvmf_poll_group *nvmf_poll_group_get(struct nvmf_transport *tt);
/* A connection the transport accepted: counted until nvmf_transport_qpair_gone, which a
 * transport being destroyed waits for. Returns the count. From any thread. */
uint32_t nvmf_transport_qpair_counted(struct nvmf_transport *tt);
void nvmf_transport_qpair_gone(struct nvmf_transport *tt);
/* The queue pair is served by pg (on pg's reactor) / no longer. */
void nvmf_poll_group_add(struct nvmf_poll_group *pg, struct nvmf_qpair *qp);
void nvmf_poll_group_remove(struct nvmf_qpair *qp);
/* nvmf_get_stats: the queue pair is no longer unassociated (Connect succeeded, or it goes). */
void nvmf_qpair_stat_associated(struct nvmf_qpair *qp);

extern const struct nvmf_transport_ops nvmf_tcp_ops;
/* TCP's cap on max_connections_per_listener (3/4 of RLIMIT_NOFILE), for nvmf_create_transport's
 * error message. */
uint32_t nvmf_tcp_max_conns_allowed(void);
extern const struct nvmf_transport_ops nvmf_loop_ops;

/* The ops of a transport type (any case), or NULL. */
const struct nvmf_transport_ops *nvmf_transport_ops_find(const char *trtype);

#endif
