/*
 * mimo/wire.h - the frames of the plugin channel, as pure codecs (no I/O, no allocation).
 *
 * Two formats travel on a plugin's Unix socket (docs/protocol.md has them byte by byte):
 *
 *  - mimo's native frames, in FUSE's model. Every frame starts with a 16-byte little-endian
 *    header {len u32 (whole frame), code i32, unique u64}, FUSE's fuse_out_header. A plugin's
 *    requests (HELLO, SEND, ACK, PING) carry an opcode in code and a non-zero unique; the
 *    agent answers each with a reply frame carrying the same unique and code = 0 or -errno.
 *    Frames the agent starts carry unique = 0 and a notify code (DISPATCH, STORE, RETRIEVE,
 *    INVAL, DELETE, POLL); a plugin answers RETRIEVE with NOTIFY_REPLY, whose unique is the
 *    RETRIEVE's notify_unique (as FUSE_NOTIFY_REPLY), and which gets no reply.
 *
 *  - BlueKing GSE's agent IPC: a 28-byte big-endian header {magic 0xdeadbeef, type u16,
 *    version u16, sequence u64, length u32 (whole frame), reserved0 u32, reserved1 u32}; in
 *    dispatch and respond frames reserved0/reserved1 are the lengths of a JSON meta and of the
 *    content that follows it.
 *
 * Decoders validate everything they return: lengths never point outside the buffer, names and
 * keys hold only the documented characters. They return 0 or a negative errno (-EBADMSG for a
 * malformed body). Encoders write a whole frame into a buffer the caller sized with the
 * matching _size function and return the frame's length.
 */
#ifndef MIMO_WIRE_H
#define MIMO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- native frames ------------------------------------------------------------------------ */

#define MIMO_WIRE_HDR_LEN      16
#define MIMO_WIRE_PROTO	       1		  /* HELLO's protocol version */
#define MIMO_WIRE_MAX_FRAME    (16u << 20 | 4096) /* largest frame either side accepts */
#define MIMO_WIRE_MAX_NAME     64		  /* plugin names: [A-Za-z0-9_.-]{1,64} */
#define MIMO_WIRE_MAX_VERSION  64
#define MIMO_WIRE_MAX_MSG_ID   255 /* message ids: 1-255 bytes of UTF-8, no control chars */
#define MIMO_WIRE_MAX_KEY      255 /* cache keys: 1-255 bytes, no NUL */
#define MIMO_WIRE_MAX_AGENT_ID 128

/* Requests a plugin sends (code field). */
enum mimo_wire_opcode {
	MIMO_WIRE_HELLO = 1,
	MIMO_WIRE_SEND = 2,
	MIMO_WIRE_ACK = 3,
	MIMO_WIRE_PING = 4,
	MIMO_WIRE_NOTIFY_REPLY = 41, /* FUSE_NOTIFY_REPLY's number */
};

/* Frames the agent starts (unique = 0). FUSE's numbers where FUSE has the notification. */
enum mimo_wire_notify {
	MIMO_WIRE_NOTIFY_POLL = 1,
	MIMO_WIRE_NOTIFY_INVAL = 2,
	MIMO_WIRE_NOTIFY_STORE = 4,
	MIMO_WIRE_NOTIFY_RETRIEVE = 5,
	MIMO_WIRE_NOTIFY_DELETE = 6,
	MIMO_WIRE_NOTIFY_DISPATCH = 16,
};

struct mimo_wire_hdr {
	uint32_t len; /* whole frame, header included */
	int32_t code; /* opcode, notify code, or a reply's error (0 or -errno) */
	uint64_t unique;
};

/*
 * Look at the start of a byte stream. Returns 0 when fewer bytes than a whole frame are
 * there, the frame's length when one is complete (*hdr filled in both cases once the header
 * is there), or -EBADMSG (len < 16) / -EMSGSIZE (len > max_frame): the stream is broken.
 */
long mimo_wire_frame_check(const void *buf, size_t len, uint32_t max_frame,
			   struct mimo_wire_hdr *hdr);
void mimo_wire_put_hdr(void *out, uint32_t len, int32_t code, uint64_t unique);

/* Validators shared by both sides and the agent's HTTP API. */
bool mimo_wire_name_valid(const char *s, size_t len);
bool mimo_wire_msg_id_valid(const char *s, size_t len);
bool mimo_wire_key_valid(const char *s, size_t len);

/* HELLO: u32 proto, u32 pid, u16 name_len, u16 version_len, u32 flags, name, version. */
struct mimo_wire_hello {
	uint32_t proto;
	uint32_t pid;
	uint32_t flags;
	const char *name;
	size_t name_len;
	const char *version;
	size_t version_len;
};
int mimo_wire_decode_hello(const void *body, size_t len, struct mimo_wire_hello *out);
size_t mimo_wire_hello_size(size_t name_len, size_t version_len);
size_t mimo_wire_encode_hello(void *out, uint64_t unique, const struct mimo_wire_hello *h);

/* HELLO's reply body: u32 proto, u32 max_frame, u64 epoch, u64 slot_id, u32 keepalive_ms,
 * u16 agent_id_len, u16 version_len, agent_id, version. */
struct mimo_wire_welcome {
	uint32_t proto;
	uint32_t max_frame;
	uint64_t epoch; /* random per agent run: DISPATCH seqs are unique within it */
	uint64_t slot_id;
	uint32_t keepalive_ms;
	const char *agent_id;
	size_t agent_id_len;
	const char *version;
	size_t version_len;
};
int mimo_wire_decode_welcome(const void *body, size_t len, struct mimo_wire_welcome *out);
size_t mimo_wire_welcome_size(size_t agent_id_len, size_t version_len);
size_t mimo_wire_encode_welcome(void *out, uint64_t unique, const struct mimo_wire_welcome *w);

/* A reply without a body (SEND, ACK, PING, refused requests). */
size_t mimo_wire_encode_reply(void *out, uint64_t unique, int32_t error);

/*
 * SEND: u64 key_hi, u64 key_lo, u32 ttl_ms, u16 id_len, u16 flags, message id, content.
 * (key_hi, key_lo) is the sender's idempotency key: the same for every retry of one message,
 * so the agent keeps one copy and its callback's webhook-id stays the same.
 */
struct mimo_wire_send {
	uint64_t key_hi;
	uint64_t key_lo;
	uint32_t ttl_ms; /* 0: the agent's default */
	uint16_t flags;
	const char *id;
	size_t id_len;
	const void *content;
	size_t content_len;
};
#define MIMO_WIRE_SEND_FIXED 24
int mimo_wire_decode_send(const void *body, size_t len, struct mimo_wire_send *out);
size_t mimo_wire_send_size(size_t id_len, size_t content_len);
size_t mimo_wire_encode_send(void *out, uint64_t unique, const struct mimo_wire_send *s);

/* ACK: u64 seq - every DISPATCH up to and including seq has been handled. */
int mimo_wire_decode_ack(const void *body, size_t len, uint64_t *seq);
#define MIMO_WIRE_ACK_SIZE (MIMO_WIRE_HDR_LEN + 8)
size_t mimo_wire_encode_ack(void *out, uint64_t unique, uint64_t seq);

#define MIMO_WIRE_PING_SIZE MIMO_WIRE_HDR_LEN
size_t mimo_wire_encode_ping(void *out, uint64_t unique);

/* DISPATCH: u64 seq, u16 id_len, u16 flags, u32 reserved, message id, content. */
struct mimo_wire_dispatch {
	uint64_t seq;
	uint16_t flags;
	const char *id;
	size_t id_len;
	const void *content;
	size_t content_len;
};
#define MIMO_WIRE_DISPATCH_FIXED 16
int mimo_wire_decode_dispatch(const void *body, size_t len, struct mimo_wire_dispatch *out);
size_t mimo_wire_dispatch_size(size_t id_len, size_t content_len);
size_t mimo_wire_encode_dispatch(void *out, const struct mimo_wire_dispatch *d);

/*
 * Cache notifications. STORE: u64 offset, u32 size, u16 key_len, u16 reserved, key, data.
 * RETRIEVE: u64 notify_unique, u64 offset, u32 size, u16 key_len, u16 reserved, key.
 * INVAL: u64 offset, u64 size (0 = to the end), u16 key_len, u16 reserved, u32 reserved, key.
 * DELETE: u16 key_len, u16 reserved, u32 reserved, key.  POLL: u64 kh.
 */
struct mimo_wire_cache {
	int32_t code; /* the notify code */
	uint64_t notify_unique;
	uint64_t offset;
	uint64_t size; /* STORE: data length; RETRIEVE: bytes asked; INVAL: range (0 = to end) */
	uint64_t kh;   /* POLL */
	const char *key;
	size_t key_len;
	const void *data; /* STORE */
};
int mimo_wire_decode_cache(int32_t code, const void *body, size_t len, struct mimo_wire_cache *out);
size_t mimo_wire_cache_size(const struct mimo_wire_cache *c);
size_t mimo_wire_encode_cache(void *out, const struct mimo_wire_cache *c);

/* NOTIFY_REPLY (header unique = notify_unique): u64 offset, u32 size, i32 error, data. */
struct mimo_wire_notify_reply {
	uint64_t notify_unique;
	uint64_t offset;
	int32_t error; /* 0, or -ENOENT when the plugin has no such entry */
	const void *data;
	size_t size;
};
#define MIMO_WIRE_NOTIFY_REPLY_FIXED 16
int mimo_wire_decode_notify_reply(const void *body, size_t len, struct mimo_wire_notify_reply *out);
size_t mimo_wire_notify_reply_size(size_t data_len);
size_t mimo_wire_encode_notify_reply(void *out, const struct mimo_wire_notify_reply *r);

/* --- GSE agent IPC ------------------------------------------------------------------------- */

#define MIMO_GSE_HDR_LEN   28
#define MIMO_GSE_MAGIC	   0xdeadbeefu
#define MIMO_GSE_VERSION   0x6
#define MIMO_GSE_MAX_FRAME (10u << 20 | 65536) /* the SDK's 10 MiB plus meta and header */
/* The largest frame bk-gse-sdk receives with its default MaxMessageSizeBytes: its reader
 * fails on a longer one (the 28-byte header counts). */
#define MIMO_GSE_SDK_MAX_FRAME (10u << 20)

enum mimo_gse_type {
	MIMO_GSE_KEEPALIVE_REQ = 0x9006,
	MIMO_GSE_KEEPALIVE_RESP = 0x9007,
	MIMO_GSE_DISPATCH = 0x9008,
	MIMO_GSE_RESPOND = 0x900a,
};

struct mimo_gse_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t version;
	uint64_t seq;
	uint32_t len; /* whole frame */
	uint32_t reserved0;
	uint32_t reserved1;
};

/* As mimo_wire_frame_check; also -EPROTO for a wrong magic. */
long mimo_gse_frame_check(const void *buf, size_t len, uint32_t max_frame,
			  struct mimo_gse_hdr *hdr);
void mimo_gse_put_hdr(void *out, const struct mimo_gse_hdr *hdr);

/* A dispatch or respond body: meta_len = reserved0 != 0, meta + content = body, exactly. */
int mimo_gse_split(const struct mimo_gse_hdr *hdr, const void *body, size_t len, const char **meta,
		   size_t *meta_len, const void **content, size_t *content_len);

/* A frame of type with meta (may be empty: keepalives carry their JSON as the whole body with
 * reserved0 = reserved1 = 0, as the real SDK does) and content. */
size_t mimo_gse_size(size_t meta_len, size_t content_len);
size_t mimo_gse_encode(void *out, uint16_t type, uint64_t seq, const void *meta, size_t meta_len,
		       const void *content, size_t content_len, bool lengths_in_reserved);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_WIRE_H */
