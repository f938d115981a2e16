/* The callback delivery loop of mimo_agent and mimo_gateway (see callback_post.h). */
#include "callback_post.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler.h"
#include "log.h"
#include "slots.h"
#include "poster.h"
#include "webhook.h"

#define MAX_PAUSE_MS 60000u
#define STOP_POLL_MS 50u /* how often a pause asks whether to stop */

struct fab_cb_poster {
	struct fab_cb_poster_opts o;
	struct mimo_http_poster *poster;
	/* What the poster is configured with: reconfigured when the slot changes. */
	char url[FAB_URL_MAX];
	char secret[FAB_SECRET_LEN];
	/* The slot as of registry generation si_gen: a lookup per message costs (PERFORMANCE.md,
	 * messaging). */
	struct slot_info si;
	uint64_t si_gen;
	bool si_ok, si_valid;
	struct mimo_ratelimit rl;
};

struct fab_cb_poster *fab_cb_poster_new(const struct fab_cb_poster_opts *o)
{
	struct fab_cb_poster *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->o = *o;
	if (p->o.max_pause_ms == 0 || p->o.max_pause_ms > MAX_PAUSE_MS)
		p->o.max_pause_ms = MAX_PAUSE_MS;
	p->poster = mimo_http_poster_new();
	if (p->poster == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void fab_cb_poster_free(struct fab_cb_poster *p)
{
	if (p == NULL)
		return;
	mimo_http_poster_free(p->poster);
	free(p);
}

void fab_cb_poster_abort(struct fab_cb_poster *p)
{
	mimo_http_poster_set_abort(p->poster, true);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The message's slot, looked up again only when the registry changed. */
static bool slot_of(struct fab_cb_poster *p, uint64_t slot_id, struct slot_info *si)
{
	uint64_t gen = slots_generation(p->o.slots);

	if (!p->si_valid || gen != p->si_gen || p->si.id != slot_id) {
		p->si_ok = slots_get(p->o.slots, slot_id, &p->si) == 0;
		p->si_gen = gen;
		p->si_valid = true;
	}
	if (p->si_ok)
		*si = p->si;
	return p->si_ok;
}

/* Point the poster at the slot's URL and secret when they are not those it has. */
static void configure(struct fab_cb_poster *p, const struct slot_info *si)
{
	struct mimo_http_poster_opts o = { .url = si->url,
					   .timeout_ms = p->o.timeout_ms,
					   .spin_us = 200,
					   .max_retry_after_ms = MAX_PAUSE_MS,
					   .secret = si->secret,
					   .user_agent = p->o.user_agent,
					   .forbid_link_local = !p->o.allow_link_local };

	if (strcmp(si->url, p->url) == 0 && strcmp(si->secret, p->secret) == 0)
		return;
	mimo_http_poster_configure(p->poster, &o);
	snprintf(p->url, sizeof(p->url), "%s", si->url);
	snprintf(p->secret, sizeof(p->secret), "%s", si->secret);
}

static bool stopping(const struct fab_cb_hooks *h)
{
	return h->stopping != NULL && h->stopping(h->arg);
}

/* Sleep ms, in short naps so that a stopping caller is not kept waiting: false to stop. */
static bool pause_for(struct fab_cb_poster *p, const struct fab_cb_hooks *h, uint64_t ms)
{
	for (uint64_t slept = 0; slept < ms; slept += STOP_POLL_MS) {
		uint32_t nap = (uint32_t)MIMO_MIN(ms - slept, (uint64_t)STOP_POLL_MS);

		if (!mimo_http_poster_nap(p->poster, nap) || stopping(h))
			return false;
	}
	return true;
}

enum fab_cb_outcome fab_cb_post(struct fab_cb_poster *p, const struct fab_cb_msg *m,
				const struct fab_cb_hooks *h)
{
	const char *comp = p->o.log_component;
	char id[WEBHOOK_ID_LEN], why[256];
	uint32_t attempt = 0;
	uint64_t sup;

	webhook_make_id(id, m->key_hi, m->key_lo);
	for (;;) {
		enum mimo_http_outcome out;
		struct slot_info si;
		uint32_t retry_after = 0;
		uint64_t pause;
		long status = 0;
		int64_t now;

		if (mimo_http_poster_aborting(p->poster))
			return FAB_CB_STOPPED;
		if (!slot_of(p, m->slot_id, &si)) {
			if (mimo_ratelimit_allow(&p->rl, 1000000000, &sup))
				MIMO_WARN(comp, "slot %" PRIu64 " deleted: message %s dropped",
					  m->slot_id, m->name);
			return FAB_CB_DROPPED;
		}
		configure(p, &si);
		if (m->expires_ms != 0 && now_ms() > m->expires_ms) {
			MIMO_WARN(comp, "slot %" PRIu64 ": message %s expired undelivered (TTL)",
				  m->slot_id, m->name);
			return FAB_CB_DROPPED;
		}
		out = mimo_http_poster_send(p->poster, id, m->body, m->len, &retry_after, &status,
					    why, sizeof(why));
		if (out == MIMO_HTTP_OK)
			return FAB_CB_DELIVERED;
		if (out == MIMO_HTTP_ABORTED)
			return FAB_CB_STOPPED;
		if (out == MIMO_HTTP_PERMANENT) {
			MIMO_WARN(comp, "slot %" PRIu64 ": %s refused message %s for good: %s",
				  m->slot_id, p->url, m->name, why);
			return FAB_CB_DROPPED;
		}
		if (stopping(h))
			return FAB_CB_STOPPED;
		pause = mimo_http_backoff_ms(p->o.backoff_ms, attempt++, retry_after);
		pause = MIMO_MIN(pause, (uint64_t)p->o.max_pause_ms);
		if (mimo_ratelimit_allow(&p->rl, 1000000000, &sup))
			MIMO_INFO(comp, "slot %" PRIu64 ": %s: %s; retrying in %" PRIu64 " ms",
				  m->slot_id, p->url, why, pause);
		/* Not past the message's end: it is dropped then, not a pause later. */
		now = now_ms();
		if (m->expires_ms != 0 && now + (int64_t)pause > m->expires_ms)
			pause = (uint64_t)MIMO_MAX(m->expires_ms - now, (int64_t)1);
		if (h->pausing != NULL)
			h->pausing(h->arg);
		if (!pause_for(p, h, pause))
			return FAB_CB_STOPPED;
	}
}
