/*
 * The controller's side of DH-HMAC-CHAP (NVMe Base 2.0, 8.13.5) on one queue, as a state
 * machine of messages: what an AUTH_Send brings and what an AUTH_Receive takes away. No I/O
 * and no knowledge of queues or controllers: the caller (ctrlr.c) gives it the NQNs, the
 * allowed hashes and groups and a way to the keys, and acts on the events it returns. So the
 * fuzzer drives it directly (test/fuzz/dhchap/fuzz_dhchap_auth.c).
 *
 * The sequence: AUTH_Negotiate (Send) -> DH-HMAC-CHAP_Challenge (Receive) -> _Reply (Send) ->
 * _Success1 (Receive) and, when the host asked the controller to authenticate itself,
 * _Success2 (or AUTH_Failure2) (Send). A message the controller cannot accept turns the next
 * Receive into AUTH_Failure1; the transaction has then failed. An AUTH_Negotiate starts a new
 * transaction at any point (re-authentication of a queue already authenticated included) -
 * but a queue not yet authenticated gets NVMF_AUTH_MAX_ATTEMPTS of them: each challenge costs
 * the controller a Diffie-Hellman key pair, and whoever knows a host's NQN can ask for them.
 */
#ifndef MIMO_NVMF_AUTH_H
#define MIMO_NVMF_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "dhchap.h"

#define NVMF_AUTH_MAX_ATTEMPTS 3

enum nvmf_auth_state {
	NVMF_AUTH_NEGOTIATE, /* waiting for AUTH_Negotiate */
	NVMF_AUTH_CHALLENGE, /* negotiated: the next Receive gets the challenge */
	NVMF_AUTH_REPLY,     /* challenge sent: waiting for the reply */
	NVMF_AUTH_SUCCESS1,  /* host authenticated: the next Receive gets Success1 */
	NVMF_AUTH_SUCCESS2,  /* Success1 carried our response: waiting for Success2/Failure2 */
	NVMF_AUTH_FAILURE1,  /* failed: the next Receive gets Failure1 */
	NVMF_AUTH_COMPLETED,
	NVMF_AUTH_FAILED,
};

enum nvmf_auth_event {
	NVMF_AUTH_EV_NONE,
	NVMF_AUTH_EV_DONE,   /* the transaction succeeded: the queue is authenticated */
	NVMF_AUTH_EV_FAILED, /* it failed: close the queue once this command's answer is out */
};

struct nvmf_auth_params {
	const char *hostnqn;
	const char *subnqn;
	uint32_t digests;  /* allowed: 1 << HashID */
	uint32_t dhgroups; /* allowed: 1 << DHgID */
	/* The host's secret (ctrlr false) or the controller's (true): 0, or -ENOKEY when the
	 * host has none configured, or another errno when it cannot be read now. */
	int (*get_key)(void *arg, bool ctrlr, struct mimo_key_material *out);
	void *arg;
	uint32_t *seqnum; /* the controller's sequence numbers: never 0 */
};

struct nvmf_auth {
	enum nvmf_auth_state state;
	bool authenticated; /* a transaction succeeded on this queue */
	bool required;	    /* the caller's: the queue may do nothing else until then */
	bool cvalid;	    /* the host sent a challenge for us */
	uint8_t digest;
	uint8_t dhgroup;
	uint8_t fail_reason; /* the Failure1 reason code explanation */
	uint8_t attempts;    /* transactions started before the queue authenticated */
	uint16_t tid;
	uint32_t seqnum;
	const char *why; /* the last failure, in words, for the log */
	struct dhchap_dh *dh;
	uint8_t c1[DHCHAP_MAX_HASH_LEN];
	uint8_t r2[DHCHAP_MAX_HASH_LEN]; /* our response to the host's challenge */
};

void nvmf_auth_init(struct nvmf_auth *a);
/* Free what a transaction under way holds (the DH key). */
void nvmf_auth_fini(struct nvmf_auth *a);
/* An AUTH_Send's len bytes. The command itself always succeeds (failures are reported by
 * the next Receive), but an AUTH_Failure2 ends the transaction at once (EV_FAILED). */
enum nvmf_auth_event nvmf_auth_send(struct nvmf_auth *a, const struct nvmf_auth_params *p,
				    const uint8_t *msg, uint32_t len);
/* An AUTH_Receive: the message for buf (al bytes, zeroed by the caller) in *len, and the
 * event. al too small even for AUTH_Failure1 (8 bytes): *len 0, EV_FAILED. */
enum nvmf_auth_event nvmf_auth_recv(struct nvmf_auth *a, const struct nvmf_auth_params *p,
				    uint8_t *buf, uint32_t al, uint32_t *len);
/* SPDK's names: "negotiate", ..., "completed", "failed". */
const char *nvmf_auth_state_name(enum nvmf_auth_state state);

#endif
