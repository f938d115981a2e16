/* What the nvmf RPC files share: finding the target and subsystem a call names, and decoding
 * a transport address object (listen_address, a referral's address). Each answers the error
 * itself and returns NULL / false. On the RPC reactor. */
#ifndef MIMO_NVMF_RPC_INTERNAL_H
#define MIMO_NVMF_RPC_INTERNAL_H

#include <stdbool.h>

#include "mimo/jsonrpc.h"
#include "nvmf_internal.h"

struct mimo_nvmf_tgt *nvmf_rpc_get_tgt(struct mimo_jsonrpc_request *req, const char *name);
struct mimo_nvmf_subsystem *nvmf_rpc_get_subsys(struct mimo_jsonrpc_request *req,
						const char *tgt_name, const char *nqn);
/* A {trtype, adrfam, traddr, trsvcid} object; mimo's TCP defaults filled in. */
bool nvmf_rpc_decode_addr(struct mimo_jsonrpc_request *req, const json_t *obj,
			  struct mimo_nvmf_listen_addr *a);

/* Each file's methods (nvmf_rpc_register calls them). */
void nvmf_info_rpc_register(void);
void nvmf_referral_rpc_register(void);
void nvmf_ana_rpc_register(void);

#endif
