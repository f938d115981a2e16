/*
 * Asymmetric Namespace Access, as SPDK's target does it: a subsystem created with
 * ana_reporting has, per listener (path) and per ANA group (1 to max_namespaces), a state -
 * optimized, non-optimized or inaccessible - and each namespace is in one group (its nsid
 * unless set). A controller sees the states of the listener it connected through: in the ANA
 * log page (LID 0Ch), in an ANA change notice when they change, and in the status of I/O to
 * a namespace whose group is inaccessible on its path (Path Related Status, which a
 * multipath host answers by trying another path). On the target's reactor, except where said.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport.h"

static const struct {
	uint8_t state;
	const char *name;
} g_states[] = {
	{ MIMO_NVME_ANA_OPTIMIZED, "optimized" },
	{ MIMO_NVME_ANA_NON_OPTIMIZED, "non_optimized" },
	{ MIMO_NVME_ANA_INACCESSIBLE, "inaccessible" },
	{ MIMO_NVME_ANA_PERSISTENT_LOSS, "persistent_loss" },
	{ MIMO_NVME_ANA_CHANGE, "change" },
};

const char *nvmf_ana_state_name(uint8_t state)
{
	for (size_t i = 0; i < MIMO_ARRAY_SIZE(g_states); i++) {
		if (g_states[i].state == state)
			return g_states[i].name;
	}
	return "unknown";
}

uint8_t nvmf_ana_state_parse(const char *name)
{
	/* What SPDK lets a listener be set to: the first three (no persistent loss, and the
	 * change state is never used: a state changes at once). */
	for (size_t i = 0; name != NULL && i < 3; i++) {
		if (strcasecmp(g_states[i].name, name) == 0)
			return g_states[i].state;
	}
	return 0;
}

struct nvmf_subsys_listener *nvmf_subsystem_find_listener(const struct mimo_nvmf_subsystem *s,
							  const struct nvmf_port *port)
{
	struct nvmf_subsys_listener *l;

	TAILQ_FOREACH(l, &s->listeners, link)
	{
		if (port != NULL && l->port == port)
			return l;
	}
	return NULL;
}

int nvmf_listener_ana_init(const struct mimo_nvmf_subsystem *s, struct nvmf_subsys_listener *l)
{
	if (!s->ana_reporting || s->max_nsid == 0)
		return 0;
	l->ana_state = malloc(s->max_nsid);
	if (l->ana_state == NULL)
		return -ENOMEM;
	memset(l->ana_state, MIMO_NVME_ANA_OPTIMIZED, s->max_nsid);
	return 0;
}

int nvmf_ctrlr_ana_init(struct nvmf_ctrlr *c)
{
	const struct mimo_nvmf_subsystem *s = c->subsys;
	const struct nvmf_subsys_listener *l;

	if (!s->ana_reporting || s->max_nsid == 0)
		return 0;
	c->ana_state = calloc(s->max_nsid, sizeof(*c->ana_state));
	if (c->ana_state == NULL)
		return -ENOMEM;
	l = nvmf_subsystem_find_listener(s, c->port);
	for (uint32_t g = 0; g < s->max_nsid; g++)
		atomic_init(&c->ana_state[g],
			    l != NULL ? l->ana_state[g] : MIMO_NVME_ANA_INACCESSIBLE);
	c->ana_chgcnt = l != NULL ? l->ana_chgcnt : 0;
	return 0;
}

int nvmf_subsystem_set_ana_state(struct mimo_nvmf_subsystem *s, const struct nvmf_port *port,
				 uint8_t state, uint32_t anagrpid)
{
	struct nvmf_subsys_listener *l = nvmf_subsystem_find_listener(s, port);
	struct nvmf_ctrlr *c;

	if (!s->ana_reporting || anagrpid > s->max_nsid || state == 0)
		return -EINVAL;
	if (l == NULL)
		return -ENOENT;
	if (anagrpid != 0 && l->ana_state[anagrpid - 1] == state)
		return 0;
	for (uint32_t g = 1; g <= s->max_nsid; g++) {
		if (anagrpid == 0 || g == anagrpid)
			l->ana_state[g - 1] = state;
	}
	l->ana_chgcnt++;
	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		if (c->port == port)
			nvmf_ctrlr_ana_changed(c, l);
	}
	return 0;
}

int nvmf_subsystem_set_ns_ana_group(struct mimo_nvmf_subsystem *s, uint32_t nsid, uint32_t anagrpid)
{
	struct nvmf_ns *ns = nvmf_subsystem_get_ns(s, nsid);
	struct nvmf_subsys_listener *l;
	struct nvmf_ctrlr *c;

	if (anagrpid == 0 || anagrpid > s->max_nsid)
		return -EINVAL;
	if (ns == NULL)
		return -ENOENT;
	if (atomic_load(&ns->anagrpid) == anagrpid)
		return 0;
	atomic_store(&ns->anagrpid, anagrpid);
	if (!s->ana_reporting)
		return 0;
	/* The ANA log of every path changed (the namespace lists of two groups). */
	TAILQ_FOREACH(l, &s->listeners, link)
	l->ana_chgcnt++;
	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		l = nvmf_subsystem_find_listener(s, c->port);
		if (l != NULL)
			nvmf_ctrlr_ana_changed(c, l);
	}
	return 0;
}

void *nvmf_ana_log(const struct nvmf_ctrlr *c, bool rgo, size_t *len)
{
	const struct mimo_nvmf_subsystem *s = c->subsys;
	struct mimo_nvme_ana_log_header *h;
	uint32_t *count, *next;
	uint8_t *buf = NULL, *p;
	size_t max;

	if (!s->ana_reporting || c->ana_state == NULL)
		return NULL;
	/* Two passes over the namespaces, not one per group (max_namespaces may be large):
	 * how many this host sees in each group, then each one's place in its descriptor. */
	count = calloc(2 * (size_t)s->max_nsid, sizeof(*count));
	if (count == NULL)
		return NULL;
	next = count + s->max_nsid;
	for (uint32_t id = 1; id <= s->max_nsid; id++) {
		const struct nvmf_ns *ns = nvmf_ctrlr_get_ns(c, id);
		uint32_t g = ns != NULL ? atomic_load(&ns->anagrpid) : 0;

		if (g != 0 && g <= s->max_nsid)
			count[g - 1]++;
	}
	/* At most one descriptor per group and each namespace listed once. */
	max = sizeof(*h) + (size_t)s->max_nsid * (sizeof(struct mimo_nvme_ana_group_desc) + 4);
	buf = calloc(1, max);
	if (buf == NULL)
		goto out;
	h = (struct mimo_nvme_ana_log_header *)buf;
	h->chgcnt = c->ana_chgcnt;
	p = buf + sizeof(*h);
	/* The groups with a namespace this host sees, ascending; where each one's NSIDs go. */
	for (uint32_t g = 1; g <= s->max_nsid; g++) {
		struct mimo_nvme_ana_group_desc d = { 0 };

		if (count[g - 1] == 0)
			continue;
		d.anagrpid = g;
		d.nnsids = rgo ? 0 : count[g - 1];
		d.chgcnt = c->ana_chgcnt;
		d.state = atomic_load_explicit(&c->ana_state[g - 1], memory_order_relaxed);
		memcpy(p, &d, sizeof(d));
		next[g - 1] = (uint32_t)(p + sizeof(d) - buf);
		p += sizeof(d) + 4 * (size_t)d.nnsids;
		h->ngrps++;
	}
	for (uint32_t id = 1; id <= s->max_nsid && !rgo; id++) {
		const struct nvmf_ns *ns = nvmf_ctrlr_get_ns(c, id);
		uint32_t g = ns != NULL ? atomic_load(&ns->anagrpid) : 0;

		if (g == 0 || g > s->max_nsid)
			continue;
		memcpy(buf + next[g - 1], &id, 4);
		next[g - 1] += 4;
	}
	*len = (size_t)(p - buf);
out:
	free(count);
	return buf;
}
