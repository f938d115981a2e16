/*
 * The host's side of DH-HMAC-CHAP (NVMe Base 2.0, 8.13.5) on one queue, as message functions:
 * build the AUTH_Negotiate, check the controller's DH-HMAC-CHAP_Challenge and answer it, check
 * its Success1 (and with it, in bidirectional authentication, the controller's response). No
 * I/O: qpair.c sends and receives (Authentication Send / Receive), and the fuzzer drives these
 * with messages a controller might send (test/fuzz/dhchap/fuzz_dhchap_auth.c).
 */
#ifndef MIMO_NVME_AUTH_H
#define MIMO_NVME_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "dhchap.h"

/* The longest message either side sends: a reply with two SHA-512 values and an ffdhe8192
 * value (16 + 2 * 64 + 1024), or a challenge (16 + 64 + 1024). The host receives into 4096
 * bytes, as the Linux host does. */
#define NVME_AUTH_BUF_LEN 4096

struct nvme_auth_params {
	const char *hostnqn;
	const char *subnqn;
	const struct mimo_key_material *key;	  /* the host's secret */
	const struct mimo_key_material *ctrl_key; /* the controller's, or NULL: unidirectional */
	uint32_t digests;			  /* offered: 1 << HashID */
	uint32_t dhgroups;			  /* offered: 1 << DHgID */
	uint32_t seqnum; /* S2 for the controller's challenge (bidirectional): never 0 */
};

enum nvme_auth_result {
	NVME_AUTH_NEXT,	    /* send what was built (out, out_len) */
	NVME_AUTH_DONE,	    /* authenticated (bidirectional: send Success2 first, in out) */
	NVME_AUTH_FAILURE2, /* refuse: send the AUTH_Failure2 in out, then give up */
	NVME_AUTH_REFUSED,  /* the controller sent AUTH_Failure1: give up */
};

struct nvme_auth {
	uint16_t tid;
	uint8_t digest;
	uint8_t dhgroup;
	uint8_t reason; /* what went wrong: a Failure1's explanation, or ours for Failure2 */
	uint32_t s2;
	const char *why;		 /* in words, for the log */
	uint8_t r2[DHCHAP_MAX_HASH_LEN]; /* the controller's response we expect */
};

/* Start a transaction: the AUTH_Negotiate (into out, NVME_AUTH_BUF_LEN bytes); its length. */
uint32_t nvme_auth_negotiate(struct nvme_auth *a, const struct nvme_auth_params *p, uint16_t tid,
			     uint8_t *out);
/* What an Authentication Receive brought after the negotiate: len bytes (the buffer beyond
 * what arrived is zero). NEXT with the reply in out, FAILURE2 or REFUSED. */
enum nvme_auth_result nvme_auth_challenge(struct nvme_auth *a, const struct nvme_auth_params *p,
					  const uint8_t *msg, uint32_t len, uint8_t *out,
					  uint32_t *out_len);
/* What came after the reply: DONE (with Success2 in out when bidirectional, *out_len 0
 * otherwise), FAILURE2 or REFUSED. */
enum nvme_auth_result nvme_auth_success1(struct nvme_auth *a, const struct nvme_auth_params *p,
					 const uint8_t *msg, uint32_t len, uint8_t *out,
					 uint32_t *out_len);
/* Forget what a transaction holds. */
void nvme_auth_wipe(struct nvme_auth *a);
/* The Failure1 reason explanations, in words. */
const char *nvme_auth_reason_name(uint8_t reason);

#endif
