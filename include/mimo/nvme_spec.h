/*
 * mimo/nvme_spec.h - NVMe, NVMe over Fabrics and NVMe/TCP wire structures, as the NVM Express
 * Base Specification 2.0 and the NVMe/TCP Transport Specification 1.0 define them.
 * Everything is little-endian on the wire, as is every host mimo runs on (x86-64, arm64);
 * the static asserts pin each layout.
 */
#ifndef MIMO_NVME_SPEC_H
#define MIMO_NVME_SPEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIMO_NVME_NQN_FIELD_SIZE 256
#define MIMO_NVMF_NQN_MAX_LEN	 223
#define MIMO_NVMF_DISCOVERY_NQN	 "nqn.2014-08.org.nvmexpress.discovery"

#pragma pack(push, 1)

/* --- submission and completion queue entries ------------------------------------------- */

struct mimo_nvme_sgl {
	uint64_t address;
	uint32_t length;
	uint8_t reserved[3];
	uint8_t id; /* type << 4 | subtype */
};
_Static_assert(sizeof(struct mimo_nvme_sgl) == 16, "sgl");

/* SGL identifiers NVMe/TCP uses. */
#define MIMO_NVME_SGL_DATA_BLOCK_OFFSET 0x01 /* in-capsule data, address = offset */
#define MIMO_NVME_SGL_TRANSPORT_DATA	0x5a /* data moved by C2HData / R2T+H2CData */

struct mimo_nvme_cmd {
	uint8_t opc;
	uint8_t fuse_psdt; /* fuse: bits 0-1; psdt: bits 6-7 (2 = SGL for data and metadata) */
	uint16_t cid;
	uint32_t nsid;
	uint64_t rsvd2;
	uint64_t mptr;
	struct mimo_nvme_sgl dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};
_Static_assert(sizeof(struct mimo_nvme_cmd) == 64, "cmd");

struct mimo_nvme_cpl {
	uint32_t cdw0;
	uint32_t cdw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* bit 0 phase; bits 1-8 SC; 9-11 SCT; 14 more; 15 DNR */
};
_Static_assert(sizeof(struct mimo_nvme_cpl) == 16, "cpl");

static inline uint16_t mimo_nvme_status(uint8_t sct, uint8_t sc, int dnr)
{
	return (uint16_t)(((uint16_t)sc << 1) | ((uint16_t)(sct & 7) << 9) | (dnr ? 0x8000 : 0));
}
static inline uint8_t mimo_nvme_status_sc(uint16_t status)
{
	return (uint8_t)(status >> 1);
}
static inline uint8_t mimo_nvme_status_sct(uint16_t status)
{
	return (uint8_t)((status >> 9) & 7);
}

/* Status code types and the codes mimo uses. */
#define MIMO_NVME_SCT_GENERIC	       0x0
#define MIMO_NVME_SCT_COMMAND_SPECIFIC 0x1
#define MIMO_NVME_SCT_MEDIA	       0x2
#define MIMO_NVME_SCT_PATH	       0x3 /* Path Related Status */
/* Path Related Status codes: Asymmetric Namespace Access states a command cannot run in. */
#define MIMO_NVME_SC_ANA_PERSISTENT_LOSS 0x01
#define MIMO_NVME_SC_ANA_INACCESSIBLE	 0x02
#define MIMO_NVME_SC_ANA_TRANSITION	 0x03

#define MIMO_NVME_SC_SUCCESS			 0x00
#define MIMO_NVME_SC_INVALID_OPCODE		 0x01
#define MIMO_NVME_SC_INVALID_FIELD		 0x02
#define MIMO_NVME_SC_CID_CONFLICT		 0x03
#define MIMO_NVME_SC_DATA_TRANSFER_ERROR	 0x04
#define MIMO_NVME_SC_INTERNAL_DEVICE_ERROR	 0x06
#define MIMO_NVME_SC_ABORTED_BY_REQUEST		 0x07
#define MIMO_NVME_SC_ABORTED_SQ_DELETION	 0x08
#define MIMO_NVME_SC_INVALID_NAMESPACE		 0x0b
#define MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR	 0x0c
#define MIMO_NVME_SC_INVALID_SGL_DESCRIPTOR	 0x0d
#define MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID	 0x0f
#define MIMO_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID 0x11
#define MIMO_NVME_SC_INVALID_SGL_OFFSET		 0x16
#define MIMO_NVME_SC_TRANSIENT_TRANSPORT_ERROR	 0x22
#define MIMO_NVME_SC_LBA_OUT_OF_RANGE		 0x80
#define MIMO_NVME_SC_CAPACITY_EXCEEDED		 0x81
#define MIMO_NVME_SC_NAMESPACE_NOT_READY	 0x82

/* Command specific. */
#define MIMO_NVME_SC_ABORT_LIMIT_EXCEEDED   0x03
#define MIMO_NVME_SC_ASYNC_EVENT_LIMIT	    0x05
#define MIMO_NVME_SC_INVALID_LOG_PAGE	    0x09
#define MIMO_NVME_SC_FEATURE_NOT_SAVEABLE   0x0d
#define MIMO_NVMF_SC_CONNECT_INCOMPATIBLE   0x80
#define MIMO_NVMF_SC_CONNECT_CTRLR_BUSY	    0x81
#define MIMO_NVMF_SC_CONNECT_INVALID_PARAMS 0x82
#define MIMO_NVMF_SC_CONNECT_INVALID_HOST   0x84
#define MIMO_NVMF_SC_AUTH_REQUIRED	    0x91 /* a command before the queue authenticated */

/* Media and data integrity. */
#define MIMO_NVME_SC_WRITE_FAULT	    0x80
#define MIMO_NVME_SC_UNRECOVERED_READ_ERROR 0x81
#define MIMO_NVME_SC_COMPARE_FAILURE	    0x85

/* Admin opcodes. */
#define MIMO_NVME_OPC_GET_LOG_PAGE    0x02
#define MIMO_NVME_OPC_CREATE_IO_SQ    0x01
#define MIMO_NVME_OPC_DELETE_IO_SQ    0x00
#define MIMO_NVME_OPC_IDENTIFY	      0x06
#define MIMO_NVME_OPC_ABORT	      0x08
#define MIMO_NVME_OPC_SET_FEATURES    0x09
#define MIMO_NVME_OPC_GET_FEATURES    0x0a
#define MIMO_NVME_OPC_ASYNC_EVENT_REQ 0x0c
#define MIMO_NVME_OPC_KEEP_ALIVE      0x18
#define MIMO_NVME_OPC_FABRIC	      0x7f

/* I/O opcodes. */
#define MIMO_NVME_OPC_FLUSH	   0x00
#define MIMO_NVME_OPC_WRITE	   0x01
#define MIMO_NVME_OPC_READ	   0x02
#define MIMO_NVME_OPC_COMPARE	   0x05
#define MIMO_NVME_OPC_WRITE_ZEROES 0x08
#define MIMO_NVME_OPC_DSM	   0x09

/* Fabrics command types (cmd byte 4). */
#define MIMO_NVMF_FCTYPE_PROPERTY_SET 0x00
#define MIMO_NVMF_FCTYPE_CONNECT      0x01
#define MIMO_NVMF_FCTYPE_PROPERTY_GET 0x04
#define MIMO_NVMF_FCTYPE_AUTH_SEND    0x05
#define MIMO_NVMF_FCTYPE_AUTH_RECV    0x06
#define MIMO_NVMF_FCTYPE_DISCONNECT   0x08

/* Identify CNS values. */
#define MIMO_NVME_CNS_NS	     0x00
#define MIMO_NVME_CNS_CTRLR	     0x01
#define MIMO_NVME_CNS_ACTIVE_NS_LIST 0x02
#define MIMO_NVME_CNS_NS_ID_DESC     0x03
#define MIMO_NVME_CNS_CTRLR_IOCS     0x06 /* I/O command set specific, CSI in CDW11 31:24 */
#define MIMO_NVME_CSI_NVM	     0x00

/* Log pages. */
#define MIMO_NVME_LOG_ERROR	      0x01
#define MIMO_NVME_LOG_HEALTH	      0x02
#define MIMO_NVME_LOG_FIRMWARE	      0x03
#define MIMO_NVME_LOG_CHANGED_NS_LIST 0x04
#define MIMO_NVME_LOG_ANA	      0x0c /* Asymmetric Namespace Access */
#define MIMO_NVME_LOG_DISCOVERY	      0x70

/* Features. */
#define MIMO_NVME_FEAT_ARBITRATION	     0x01
#define MIMO_NVME_FEAT_POWER_MANAGEMENT	     0x02
#define MIMO_NVME_FEAT_TEMPERATURE_THRESHOLD 0x04
#define MIMO_NVME_FEAT_ERROR_RECOVERY	     0x05
#define MIMO_NVME_FEAT_WRITE_ATOMICITY	     0x0a
#define MIMO_NVME_FEAT_VOLATILE_WRITE_CACHE  0x06
#define MIMO_NVME_FEAT_NUMBER_OF_QUEUES	     0x07
#define MIMO_NVME_FEAT_ASYNC_EVENT_CONFIG    0x0b
#define MIMO_NVME_FEAT_KEEP_ALIVE_TIMER	     0x0f

/* Controller properties (registers). */
#define MIMO_NVME_REG_CAP  0x00
#define MIMO_NVME_REG_VS   0x08
#define MIMO_NVME_REG_CC   0x14
#define MIMO_NVME_REG_CSTS 0x1c

#define MIMO_NVME_CC_EN		  (1u << 0)
#define MIMO_NVME_CC_SHN_SHIFT	  14
#define MIMO_NVME_CSTS_RDY	  (1u << 0)
#define MIMO_NVME_CSTS_CFS	  (1u << 1)
#define MIMO_NVME_CSTS_SHST_SHIFT 2
#define MIMO_NVME_SHST_COMPLETE	  2

/* --- fabrics commands ----------------------------------------------------------------------- */

struct mimo_nvmf_connect_cmd {
	uint8_t opc;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct mimo_nvme_sgl sgl1;
	uint16_t recfmt;
	uint16_t qid;
	uint16_t sqsize;
	uint8_t cattr; /* bit 2: disable SQ flow control */
	uint8_t rsvd3;
	uint32_t kato;
	uint8_t rsvd4[12];
};
_Static_assert(sizeof(struct mimo_nvmf_connect_cmd) == 64, "connect");

#define MIMO_NVMF_CATTR_DISABLE_SQ_FLOW_CONTROL (1u << 2)

struct mimo_nvmf_connect_data {
	uint8_t hostid[16];
	uint16_t cntlid;
	uint8_t rsvd5[238];
	char subnqn[MIMO_NVME_NQN_FIELD_SIZE];
	char hostnqn[MIMO_NVME_NQN_FIELD_SIZE];
	uint8_t rsvd6[256];
};
_Static_assert(sizeof(struct mimo_nvmf_connect_data) == 1024, "connect data");

struct mimo_nvmf_prop_cmd { /* Property Get and Property Set */
	uint8_t opc;
	uint8_t rsvd0;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd1[35];
	uint8_t attrib; /* bits 0-2: 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd2[3];
	uint32_t ofst;
	uint64_t value; /* Property Set */
	uint8_t rsvd4[8];
};
_Static_assert(sizeof(struct mimo_nvmf_prop_cmd) == 64, "prop");

/* Connect response DW0 bits 31:16, AUTHREQ: authentication transaction required (ATR), and
 * authentication with secure channel concatenation required (ASCR). */
#define MIMO_NVMF_CONNECT_AUTHREQ_ATR  (1u << 17)
#define MIMO_NVMF_CONNECT_AUTHREQ_ASCR (1u << 18)

/* --- in-band authentication (NVMe Base 2.0, 8.13: DH-HMAC-CHAP) ----------------------------- */

/* Authentication Send (tl: bytes sent) and Authentication Receive (al: bytes the host takes). */
struct mimo_nvmf_auth_cmd {
	uint8_t opc;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype; /* MIMO_NVMF_FCTYPE_AUTH_SEND or _RECV */
	uint8_t rsvd2[19];
	struct mimo_nvme_sgl sgl1;
	uint8_t rsvd3;
	uint8_t spsp0; /* 01h */
	uint8_t spsp1; /* 01h */
	uint8_t secp;  /* E9h: NVMe in-band authentication */
	uint32_t tl_al;
	uint8_t rsvd4[16];
};
_Static_assert(sizeof(struct mimo_nvmf_auth_cmd) == 64, "auth cmd");

#define MIMO_NVMF_AUTH_SECP  0xe9
#define MIMO_NVMF_AUTH_SPSP0 0x01
#define MIMO_NVMF_AUTH_SPSP1 0x01

/* AUTH_Type */
#define MIMO_NVMF_AUTH_TYPE_COMMON 0x00
#define MIMO_NVMF_AUTH_TYPE_DHCHAP 0x01
/* AUTH_Id */
#define MIMO_NVMF_AUTH_ID_NEGOTIATE 0x00 /* common */
#define MIMO_NVMF_AUTH_ID_CHALLENGE 0x01 /* DH-HMAC-CHAP_Challenge */
#define MIMO_NVMF_AUTH_ID_REPLY	    0x02 /* DH-HMAC-CHAP_Reply */
#define MIMO_NVMF_AUTH_ID_SUCCESS1  0x03 /* DH-HMAC-CHAP_Success1 */
#define MIMO_NVMF_AUTH_ID_SUCCESS2  0x04 /* DH-HMAC-CHAP_Success2 */
#define MIMO_NVMF_AUTH_ID_FAILURE2  0xf0 /* common, host to controller */
#define MIMO_NVMF_AUTH_ID_FAILURE1  0xf1 /* common, controller to host */
/* AUTH_Negotiate protocol descriptor AUTH_ID */
#define MIMO_NVMF_AUTH_PROTOCOL_DHCHAP 0x01

/* Hash functions (HashID) and Diffie-Hellman groups (DHgID). */
#define MIMO_NVMF_DHCHAP_HASH_SHA256  0x01
#define MIMO_NVMF_DHCHAP_HASH_SHA384  0x02
#define MIMO_NVMF_DHCHAP_HASH_SHA512  0x03
#define MIMO_NVMF_DHCHAP_DHGROUP_NULL 0x00
#define MIMO_NVMF_DHCHAP_DHGROUP_2048 0x01
#define MIMO_NVMF_DHCHAP_DHGROUP_3072 0x02
#define MIMO_NVMF_DHCHAP_DHGROUP_4096 0x03
#define MIMO_NVMF_DHCHAP_DHGROUP_6144 0x04
#define MIMO_NVMF_DHCHAP_DHGROUP_8192 0x05

/* AUTH_Failure reason code (1: authentication failure) and its explanations. */
#define MIMO_NVMF_AUTH_RC_FAILURE	      0x01
#define MIMO_NVMF_AUTH_FAILED		      0x01
#define MIMO_NVMF_AUTH_PROTOCOL_UNUSABLE      0x02
#define MIMO_NVMF_AUTH_SCC_MISMATCH	      0x03
#define MIMO_NVMF_AUTH_HASH_UNUSABLE	      0x04
#define MIMO_NVMF_AUTH_DHGROUP_UNUSABLE	      0x05
#define MIMO_NVMF_AUTH_INCORRECT_PAYLOAD      0x06
#define MIMO_NVMF_AUTH_INCORRECT_PROTOCOL_MSG 0x07

/* Every message starts so. Multi-byte fields are little-endian. */
struct mimo_nvmf_auth_hdr {
	uint8_t auth_type;
	uint8_t auth_id;
	uint8_t rsvd[2];
	uint16_t t_id;
};

struct mimo_nvmf_auth_descriptor {
	uint8_t auth_id; /* MIMO_NVMF_AUTH_PROTOCOL_DHCHAP */
	uint8_t rsvd;
	uint8_t halen;
	uint8_t dhlen;
	uint8_t hash_ids[30];
	uint8_t dhg_ids[30];
};
_Static_assert(sizeof(struct mimo_nvmf_auth_descriptor) == 64, "auth descriptor");

struct mimo_nvmf_auth_negotiate {
	struct mimo_nvmf_auth_hdr hdr;
	uint8_t sc_c; /* secure channel concatenation: 0, none */
	uint8_t napd; /* descriptors that follow */
	struct mimo_nvmf_auth_descriptor descriptors[];
};
_Static_assert(sizeof(struct mimo_nvmf_auth_negotiate) == 8, "negotiate");

/* Followed by C1 (hl bytes) and the controller's DH value (dhvlen bytes). */
struct mimo_nvmf_dhchap_challenge {
	struct mimo_nvmf_auth_hdr hdr;
	uint8_t hl;
	uint8_t rsvd1;
	uint8_t hash_id;
	uint8_t dhg_id;
	uint16_t dhvlen;
	uint32_t seqnum;
	uint8_t cval[];
};
_Static_assert(sizeof(struct mimo_nvmf_dhchap_challenge) == 16, "challenge");

/* Followed by R1 (hl), C2 (hl, meaningful when cvalid) and the host's DH value (dhvlen). */
struct mimo_nvmf_dhchap_reply {
	struct mimo_nvmf_auth_hdr hdr;
	uint8_t hl;
	uint8_t rsvd1;
	uint8_t cvalid;
	uint8_t rsvd2;
	uint16_t dhvlen;
	uint32_t seqnum; /* S2, 0 when cvalid is 0 */
	uint8_t rval[];
};
_Static_assert(sizeof(struct mimo_nvmf_dhchap_reply) == 16, "reply");

/* Followed by R2 (hl bytes) when rvalid. */
struct mimo_nvmf_dhchap_success1 {
	struct mimo_nvmf_auth_hdr hdr;
	uint8_t hl;
	uint8_t rsvd1;
	uint8_t rvalid;
	uint8_t rsvd2[7];
	uint8_t rval[];
};
_Static_assert(sizeof(struct mimo_nvmf_dhchap_success1) == 16, "success1");

struct mimo_nvmf_dhchap_success2 {
	struct mimo_nvmf_auth_hdr hdr;
	uint8_t rsvd[10];
};
_Static_assert(sizeof(struct mimo_nvmf_dhchap_success2) == 16, "success2");

/* AUTH_Failure1 (controller) and AUTH_Failure2 (host). */
struct mimo_nvmf_auth_failure {
	struct mimo_nvmf_auth_hdr hdr;
	uint8_t rescode;
	uint8_t rescode_exp;
};
_Static_assert(sizeof(struct mimo_nvmf_auth_failure) == 8, "failure");

/* --- identify ------------------------------------------------------------------------------- */

struct mimo_nvme_ctrlr_data {
	uint16_t vid;
	uint16_t ssvid;
	char sn[20];
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts;
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes; /* bit 8: namespace attribute notices; bit 31: discovery log change */
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype; /* 1 I/O controller, 2 discovery controller */
	uint8_t fguid[16];
	uint16_t crdt[3]; /* Command Retry Delay Times 1-3, in 100 ms */
	uint8_t rsvd134[122];
	uint16_t oacs;
	uint8_t acl;
	uint8_t aerl;
	uint8_t frmw;
	uint8_t lpa;
	uint8_t elpe;
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint8_t rsvd270[50];
	uint16_t kas; /* keep alive support, in 100 ms units */
	uint8_t rsvd322[20];
	uint8_t anatt;	    /* ANA Transition Time, seconds */
	uint8_t anacap;	    /* ANA Capabilities: states reported, ANAGRPID behaviour */
	uint32_t anagrpmax; /* ANA Group Identifier Maximum */
	uint32_t nanagrpid; /* Number of ANA Group Identifiers */
	uint8_t rsvd352[160];
	uint8_t sqes;
	uint8_t cqes;
	uint16_t maxcmd;
	uint32_t nn;
	uint16_t oncs; /* bit 0 compare, 2 dataset management, 3 write zeroes */
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc;
	uint16_t awun;
	uint16_t awupf;
	uint8_t nvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t rsvd534;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t rsvd544[224];
	char subnqn[256];
	uint8_t rsvd1024[768];
	uint32_t ioccsz; /* fabrics: capsule size in 16-byte units */
	uint32_t iorcsz;
	uint16_t icdoff;
	uint8_t fcatt;
	uint8_t msdbd;
	uint16_t ofcs;
	uint8_t rsvd1806[242];
	uint8_t psd[1024];
	uint8_t vs[1024];
};
_Static_assert(sizeof(struct mimo_nvme_ctrlr_data) == 4096, "identify controller");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, oacs) == 256, "oacs");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, kas) == 320, "kas");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, sqes) == 512, "sqes");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, sgls) == 536, "sgls");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, subnqn) == 768, "subnqn");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, ioccsz) == 1792, "ioccsz");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, crdt) == 128, "crdt");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, anatt) == 342, "anatt");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, nanagrpid) == 348, "nanagrpid");
_Static_assert(offsetof(struct mimo_nvme_ctrlr_data, mnan) == 540, "mnan");

/* Identify CNS 06h with CSI 00h: the NVM Command Set's controller data (NVM Command Set
 * Specification 1.0, "I/O Command Set Specific Identify Controller"). */
struct mimo_nvme_nvm_ctrlr_data {
	uint8_t vsl;	/* Verify Size Limit */
	uint8_t wzsl;	/* Write Zeroes Size Limit: 2^n minimum memory pages, 0 none */
	uint8_t wusl;	/* Write Uncorrectable Size Limit */
	uint8_t dmrl;	/* Dataset Management Ranges Limit, 0 none */
	uint32_t dmrsl; /* Dataset Management Range Size Limit, in logical blocks, 0 none */
	uint64_t dmsl;	/* Dataset Management Size Limit, in logical blocks, 0 none */
	uint8_t rsvd16[4080];
};
_Static_assert(sizeof(struct mimo_nvme_nvm_ctrlr_data) == 4096, "nvm identify controller");

struct mimo_nvme_ns_data {
	uint64_t nsze;
	uint64_t ncap;
	uint64_t nuse;
	uint8_t nsfeat;
	uint8_t nlbaf;
	uint8_t flbas;
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat; /* bits 0-2: 1 = deallocated blocks read as zeroes */
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint8_t rsvd64[28];
	uint32_t anagrpid; /* the namespace's ANA group (with ANA reporting) */
	uint8_t rsvd96[8];
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct {
		uint16_t ms;
		uint8_t lbads; /* log2 of the block size */
		uint8_t rp;
	} lbaf[16];
	uint8_t rsvd192[3904];
};
_Static_assert(sizeof(struct mimo_nvme_ns_data) == 4096, "identify namespace");
_Static_assert(offsetof(struct mimo_nvme_ns_data, nguid) == 104, "nguid");
_Static_assert(offsetof(struct mimo_nvme_ns_data, anagrpid) == 92, "anagrpid");
_Static_assert(offsetof(struct mimo_nvme_ns_data, lbaf) == 128, "lbaf");

/* Namespace identification descriptor types. */
#define MIMO_NVME_NIDT_EUI64 1
#define MIMO_NVME_NIDT_NGUID 2
#define MIMO_NVME_NIDT_UUID  3

/* --- log pages ------------------------------------------------------------------------------- */

/* ANA states (the ANA log's and Identify's). */
#define MIMO_NVME_ANA_OPTIMIZED	      0x1
#define MIMO_NVME_ANA_NON_OPTIMIZED   0x2
#define MIMO_NVME_ANA_INACCESSIBLE    0x3
#define MIMO_NVME_ANA_PERSISTENT_LOSS 0x4
#define MIMO_NVME_ANA_CHANGE	      0xf

/* The ANA log page (LID 0Ch): this header, then per group a descriptor and, unless only the
 * groups were asked for (LSP bit 0, RGO), the NSIDs in it. */
struct mimo_nvme_ana_log_header {
	uint64_t chgcnt;
	uint16_t ngrps;
	uint8_t rsvd10[6];
};
_Static_assert(sizeof(struct mimo_nvme_ana_log_header) == 16, "ana log header");

struct mimo_nvme_ana_group_desc {
	uint32_t anagrpid;
	uint32_t nnsids;
	uint64_t chgcnt;
	uint8_t state; /* bits 3:0 */
	uint8_t rsvd17[15];
	uint32_t nsids[];
};
_Static_assert(sizeof(struct mimo_nvme_ana_group_desc) == 32, "ana group descriptor");

struct mimo_nvme_error_log_entry {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;
	uint16_t error_location;
	uint64_t lba;
	uint32_t nsid;
	uint8_t vendor;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t command_specific;
	uint16_t trtype_specific;
	uint8_t rsvd42[22];
};
_Static_assert(sizeof(struct mimo_nvme_error_log_entry) == 64, "error log");

struct mimo_nvme_health_log {
	uint8_t critical_warning;
	uint16_t temperature; /* kelvin */
	uint8_t available_spare;
	uint8_t available_spare_threshold;
	uint8_t percentage_used;
	uint8_t rsvd6[26];
	uint64_t data_units_read[2];
	uint64_t data_units_written[2];
	uint64_t host_read_commands[2];
	uint64_t host_write_commands[2];
	uint64_t controller_busy_time[2];
	uint64_t power_cycles[2];
	uint64_t power_on_hours[2];
	uint64_t unsafe_shutdowns[2];
	uint64_t media_errors[2];
	uint64_t num_error_info_log_entries[2];
	uint8_t rsvd192[320];
};
_Static_assert(sizeof(struct mimo_nvme_health_log) == 512, "health log");

struct mimo_nvmf_discovery_entry {
	uint8_t trtype;	 /* 3 = TCP */
	uint8_t adrfam;	 /* 1 = IPv4, 2 = IPv6 */
	uint8_t subtype; /* 1 = discovery, 2 = NVMe */
	uint8_t treq;
	uint16_t portid;
	uint16_t cntlid; /* 0xffff: dynamic */
	uint16_t asqsz;
	uint16_t eflags;
	uint8_t rsvd12[20];
	char trsvcid[32];
	uint8_t rsvd64[192];
	char subnqn[256];
	char traddr[256];
	uint8_t tsas[256];
};
_Static_assert(sizeof(struct mimo_nvmf_discovery_entry) == 1024, "discovery entry");

struct mimo_nvmf_discovery_log {
	uint64_t genctr;
	uint64_t numrec;
	uint16_t recfmt;
	uint8_t rsvd18[1006];
	struct mimo_nvmf_discovery_entry entries[];
};
_Static_assert(sizeof(struct mimo_nvmf_discovery_log) == 1024, "discovery log");

#define MIMO_NVMF_TRTYPE_TCP 3
/* In-process, host and target in one program (the Linux kernel's loop transport: 254). */
#define MIMO_NVMF_TRTYPE_LOOP	    254
#define MIMO_NVMF_ADRFAM_IPV4	    1
#define MIMO_NVMF_ADRFAM_IPV6	    2
#define MIMO_NVMF_ADRFAM_LOOP	    254
#define MIMO_NVMF_SUBTYPE_DISCOVERY 1
#define MIMO_NVMF_SUBTYPE_NVME	    2

/* --- NVMe/TCP PDUs --------------------------------------------------------------------------- */

enum mimo_nvme_tcp_pdu_type {
	MIMO_NVME_TCP_IC_REQ = 0x00,
	MIMO_NVME_TCP_IC_RESP = 0x01,
	MIMO_NVME_TCP_H2C_TERM_REQ = 0x02,
	MIMO_NVME_TCP_C2H_TERM_REQ = 0x03,
	MIMO_NVME_TCP_CAPSULE_CMD = 0x04,
	MIMO_NVME_TCP_CAPSULE_RESP = 0x05,
	MIMO_NVME_TCP_H2C_DATA = 0x06,
	MIMO_NVME_TCP_C2H_DATA = 0x07,
	MIMO_NVME_TCP_R2T = 0x09,
};

#define MIMO_NVME_TCP_FLAG_HDGST    (1u << 0)
#define MIMO_NVME_TCP_FLAG_DDGST    (1u << 1)
#define MIMO_NVME_TCP_FLAG_LAST_PDU (1u << 2)
#define MIMO_NVME_TCP_FLAG_SUCCESS  (1u << 3)

struct mimo_nvme_tcp_ch {
	uint8_t pdu_type;
	uint8_t flags;
	uint8_t hlen;
	uint8_t pdo;
	uint32_t plen;
};
_Static_assert(sizeof(struct mimo_nvme_tcp_ch) == 8, "common header");

struct mimo_nvme_tcp_ic { /* ICReq and ICResp */
	struct mimo_nvme_tcp_ch ch;
	uint16_t pfv;
	uint8_t pda;  /* ICReq: hpda; ICResp: cpda */
	uint8_t dgst; /* bit 0 header digest, bit 1 data digest */
	uint32_t maxr2t_or_maxh2cdata;
	uint8_t rsvd[112];
};
_Static_assert(sizeof(struct mimo_nvme_tcp_ic) == 128, "ic");

struct mimo_nvme_tcp_term_req {
	struct mimo_nvme_tcp_ch ch;
	uint16_t fes;
	uint32_t fei;
	uint8_t rsvd[10];
};
_Static_assert(sizeof(struct mimo_nvme_tcp_term_req) == 24, "term req");

#define MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD 0x01
#define MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR   0x02
#define MIMO_NVME_TCP_FES_HDGST_ERROR	       0x03
#define MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE    0x04
#define MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED  0x05
#define MIMO_NVME_TCP_FES_UNSUPPORTED_PARAM    0x06
/* A TermReq carries at most this much of the offending PDU. */
#define MIMO_NVME_TCP_TERM_REQ_DATA_MAX 128

struct mimo_nvme_tcp_cmd {
	struct mimo_nvme_tcp_ch ch;
	struct mimo_nvme_cmd sqe;
};
_Static_assert(sizeof(struct mimo_nvme_tcp_cmd) == 72, "capsule cmd");

struct mimo_nvme_tcp_rsp {
	struct mimo_nvme_tcp_ch ch;
	struct mimo_nvme_cpl cqe;
};
_Static_assert(sizeof(struct mimo_nvme_tcp_rsp) == 24, "capsule resp");

struct mimo_nvme_tcp_data { /* H2CData and C2HData (ttag is reserved in C2HData) */
	struct mimo_nvme_tcp_ch ch;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t datao;
	uint32_t datal;
	uint8_t rsvd[4];
};
_Static_assert(sizeof(struct mimo_nvme_tcp_data) == 24, "data");

struct mimo_nvme_tcp_r2t {
	struct mimo_nvme_tcp_ch ch;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t r2to;
	uint32_t r2tl;
	uint8_t rsvd[4];
};
_Static_assert(sizeof(struct mimo_nvme_tcp_r2t) == 24, "r2t");

#define MIMO_NVME_TCP_DIGEST_LEN 4

#pragma pack(pop)

#ifdef __cplusplus
}
#endif

#endif /* MIMO_NVME_SPEC_H */
