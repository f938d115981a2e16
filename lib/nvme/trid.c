/* Transport IDs as SPDK writes them ("trtype:tcp traddr:10.0.0.1 trsvcid:4420 subnqn:..."), and
 * the host identity used when the caller gives none. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "log.h"
#include "nvme_internal.h"
#include "uuid.h"

/* Copy value (vlen bytes) into a field of size cap (room for the NUL included). */
static int set_field(char *field, size_t cap, const char *value, size_t vlen)
{
	if (vlen == 0 || vlen >= cap)
		return -EINVAL;
	memcpy(field, value, vlen);
	field[vlen] = '\0';
	return 0;
}

static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* One key:value pair. Keys are case-insensitive; values keep their case (NQNs do). */
static int parse_pair(struct mimo_nvme_trid *trid, const char *key, size_t klen, const char *val,
		      size_t vlen, bool *have_adrfam)
{
#define KEY(k) (klen == sizeof(k) - 1 && strncasecmp(key, k, klen) == 0)
	if (KEY("trtype")) {
		if (vlen == 3 && strncasecmp(val, "tcp", 3) == 0)
			trid->trtype = MIMO_NVMF_TRTYPE_TCP;
		else if (vlen == 4 && strncasecmp(val, "loop", 4) == 0)
			trid->trtype = MIMO_NVMF_TRTYPE_LOOP;
		else
			return -EINVAL;
		return 0;
	}
	if (KEY("adrfam")) {
		if (vlen == 4 && strncasecmp(val, "ipv4", 4) == 0)
			trid->adrfam = MIMO_NVMF_ADRFAM_IPV4;
		else if (vlen == 4 && strncasecmp(val, "ipv6", 4) == 0)
			trid->adrfam = MIMO_NVMF_ADRFAM_IPV6;
		else
			return -EINVAL;
		*have_adrfam = true;
		return 0;
	}
	if (KEY("traddr"))
		return set_field(trid->traddr, sizeof(trid->traddr), val, vlen);
	if (KEY("trsvcid"))
		return set_field(trid->trsvcid, sizeof(trid->trsvcid), val, vlen);
	if (KEY("subnqn"))
		return set_field(trid->subnqn, sizeof(trid->subnqn), val, vlen);
	if (KEY("hostnqn"))
		return set_field(trid->hostnqn, sizeof(trid->hostnqn), val, vlen);
	if (KEY("ns"))
		return parse_u32(val, vlen, &trid->nsid);
	if (KEY("hostaddr"))
		return set_field(trid->hostaddr, sizeof(trid->hostaddr), val, vlen);
	if (KEY("priority")) {
		int rc = parse_u32(val, vlen, &trid->priority);

		return rc != 0 || trid->priority > 6 ? -EINVAL : 0;
	}
	/* A controller's connections cannot all come from one local port: only "any". */
	if (KEY("hostsvcid"))
		return vlen == 0 || (vlen == 1 && val[0] == '0') ? 0 : -EINVAL;
	/* alt_traddr (a failover address): mimo does not fail over; refused as unknown. */
	return -EINVAL;
#undef KEY
}

/* A loop trid names a listener in this process (traddr, "" by default) and a subsystem:
 * addresses, ports and socket options mean nothing there and are refused. */
static int loop_finish(struct mimo_nvme_trid *t, bool have_adrfam, struct mimo_nvme_trid *out)
{
	if (have_adrfam || t->trsvcid[0] != '\0' || t->hostaddr[0] != '\0' || t->priority != 0)
		return -EINVAL;
	if (t->subnqn[0] == '\0')
		snprintf(t->subnqn, sizeof(t->subnqn), "%s", MIMO_NVMF_DISCOVERY_NQN);
	*out = *t;
	return 0;
}

MIMO_EXPORT int mimo_nvme_trid_parse(struct mimo_nvme_trid *trid, const char *str)
{
	struct mimo_nvme_trid t;
	bool have_adrfam = false;
	const char *p = str;

	if (trid == NULL || str == NULL)
		return -EINVAL;
	memset(&t, 0, sizeof(t));
	t.trtype = MIMO_NVMF_TRTYPE_TCP;
	while (*p != '\0') {
		const char *key, *sep, *val;
		size_t klen, vlen;
		int rc;

		while (*p != '\0' && isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		key = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		/* The first ':' or '=' ends the key; values may hold more (IPv6, NQNs). */
		sep = key;
		while (sep < p && *sep != ':' && *sep != '=')
			sep++;
		if (sep == p || sep == key)
			return -EINVAL;
		klen = (size_t)(sep - key);
		val = sep + 1;
		vlen = (size_t)(p - val);
		rc = parse_pair(&t, key, klen, val, vlen, &have_adrfam);
		if (rc != 0)
			return rc;
	}
	if (t.trtype == MIMO_NVMF_TRTYPE_LOOP)
		return loop_finish(&t, have_adrfam, trid);
	if (t.traddr[0] == '\0')
		return -EINVAL;
	if (!have_adrfam)
		t.adrfam = strchr(t.traddr, ':') != NULL ? MIMO_NVMF_ADRFAM_IPV6
							 : MIMO_NVMF_ADRFAM_IPV4;
	if (t.trsvcid[0] == '\0')
		snprintf(t.trsvcid, sizeof(t.trsvcid), "4420");
	if (t.subnqn[0] == '\0')
		snprintf(t.subnqn, sizeof(t.subnqn), "%s", MIMO_NVMF_DISCOVERY_NQN);
	*trid = t;
	return 0;
}

MIMO_EXPORT int mimo_nvme_trid_format(const struct mimo_nvme_trid *trid, char *buf, size_t len)
{
	int n, m;

	if (trid->trtype == MIMO_NVMF_TRTYPE_LOOP)
		n = snprintf(buf, len, "trtype:loop%s%s subnqn:%s",
			     trid->traddr[0] != '\0' ? " traddr:" : "", trid->traddr, trid->subnqn);
	else
		n = snprintf(buf, len, "trtype:TCP adrfam:%s traddr:%s trsvcid:%s subnqn:%s",
			     trid->adrfam == MIMO_NVMF_ADRFAM_IPV6 ? "IPv6" : "IPv4", trid->traddr,
			     trid->trsvcid, trid->subnqn);

	if (n < 0)
		return n;
	if (trid->hostnqn[0] != '\0') {
		m = snprintf((size_t)n < len ? buf + n : NULL,
			     (size_t)n < len ? len - (size_t)n : 0, " hostnqn:%s", trid->hostnqn);
		n += m;
	}
	if (trid->nsid != 0) {
		m = snprintf((size_t)n < len ? buf + n : NULL,
			     (size_t)n < len ? len - (size_t)n : 0, " ns:%u", trid->nsid);
		n += m;
	}
	return n;
}

static pthread_once_t g_hostid_once = PTHREAD_ONCE_INIT;
static uint8_t g_hostid[16];

static void make_hostid(void)
{
	mimo_uuid_generate(g_hostid);
}

void nvme_default_hostid(uint8_t hostid[16])
{
	pthread_once(&g_hostid_once, make_hostid);
	memcpy(hostid, g_hostid, 16);
}

void nvme_hostnqn_from_hostid(const uint8_t hostid[16], char *out, size_t len)
{
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(hostid, uuid);
	snprintf(out, len, "nqn.2014-08.org.nvmexpress:uuid:%s", uuid);
}
