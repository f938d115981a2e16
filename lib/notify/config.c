#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

#define COMP "notify"

enum key_type {
	K_STRING,
	K_URL,
	K_METHOD,
	K_UINT,
	K_BOOL,
	K_DURATION,
	K_IGNORED
};

struct key_desc {
	const char *name;
	const char *env; /* NULL: no environment variable */
	enum key_type type;
	size_t offset;
	uint64_t min, max;
};

#define F(field) offsetof(struct notify_config, field)

/* Every key; docs/notify.md describes each. Aliases keep the Go bridge's files working. */
static const struct key_desc keys[] = {
	{ "url", "MIMO_NOTIFY_URL", K_URL, F(url), 0, 0 },
	{ "endpoint", NULL, K_URL, F(url), 0, 0 },
	{ "method", "MIMO_NOTIFY_METHOD", K_METHOD, F(method), 0, 0 },
	{ "timeout_ms", "MIMO_NOTIFY_TIMEOUT_MS", K_UINT, F(timeout_ms), 1, 600000 },
	{ "timeout", NULL, K_DURATION, F(timeout_ms), 1, 600000 },
	{ "retries", "MIMO_NOTIFY_RETRIES", K_UINT, F(retries), 0, 100 },
	{ "retry", NULL, K_UINT, F(retries), 0, 100 },
	{ "backoff_ms", "MIMO_NOTIFY_BACKOFF_MS", K_UINT, F(backoff_ms), 1, 600000 },
	{ "retry_backoff_ms", NULL, K_UINT, F(backoff_ms), 1, 600000 },
	{ "max_backoff_ms", "MIMO_NOTIFY_MAX_BACKOFF_MS", K_UINT, F(max_backoff_ms), 1, 600000 },
	{ "queue", "MIMO_NOTIFY_QUEUE", K_UINT, F(queue), 2, 1u << 24 },
	{ "queue_max_mb", "MIMO_NOTIFY_QUEUE_MAX_MB", K_UINT, F(queue_max_mb), 0, 1u << 16 },
	{ "spool", "MIMO_NOTIFY_SPOOL", K_STRING, F(spool), 0, 0 },
	{ "spool_max_mb", "MIMO_NOTIFY_SPOOL_MAX_MB", K_UINT, F(spool_max_mb), 1, 1u << 20 },
	{ "secret", "MIMO_NOTIFY_SECRET", K_STRING, F(secret), 0, 0 },
	{ "disable", "MIMO_NOTIFY_DISABLE", K_BOOL, F(disable), 0, 0 },
	{ "max_payload_bytes", "MIMO_NOTIFY_MAX_PAYLOAD", K_UINT, F(max_payload), 2, 16u << 20 },
	{ "grace_ms", "MIMO_NOTIFY_GRACE_MS", K_UINT, F(grace_ms), 0, 600000 },
	{ "max_retry_after_ms", NULL, K_UINT, F(max_retry_after_ms), 0, 3600000 },
	{ "spin_us", "MIMO_NOTIFY_SPIN_US", K_UINT, F(spin_us), 0, 100000 },
	{ "idle_poll_ms", "MIMO_NOTIFY_IDLE_POLL_MS", K_UINT, F(idle_poll_ms), 0, 1000 },
	{ "strict", "MIMO_NOTIFY_STRICT", K_BOOL, F(strict), 0, 0 },
	{ "source", NULL, K_IGNORED, 0, 0, 0 },
};

static const char *const config_paths[] = {
	"/etc/mimo/notify_config.json",
	"/usr/local/etc/mimo/notify_config.json",
	"./notify_config.json",
	"./config/notify_config.json",
};

void notify_config_defaults(struct notify_config *c)
{
	memset(c, 0, sizeof(*c));
	c->url = strdup(NOTIFY_DEFAULT_URL);
	c->method = strdup("POST");
	c->timeout_ms = 2000;
	c->retries = 2;
	c->backoff_ms = 100;
	c->max_backoff_ms = 5000;
	c->queue = 8192;
	c->queue_max_mb = 64;
	c->spool_max_mb = 256;
	c->max_payload = 64 * 1024;
	c->grace_ms = 2000;
	c->max_retry_after_ms = 60000;
	c->spin_us = 200;
	c->idle_poll_ms = 10;
}

void notify_config_free(struct notify_config *c)
{
	free(c->url);
	free(c->method);
	free(c->spool);
	free(c->secret);
	memset(c, 0, sizeof(*c));
}

static int dup_field(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = strdup(src);
	return *dst != NULL ? 0 : -ENOMEM;
}

int notify_config_copy(struct notify_config *dst, const struct notify_config *src)
{
	*dst = *src;
	if (dup_field(&dst->url, src->url) || dup_field(&dst->method, src->method) ||
	    dup_field(&dst->spool, src->spool) || dup_field(&dst->secret, src->secret)) {
		notify_config_free(dst);
		return -ENOMEM;
	}
	return 0;
}

int notify_parse_duration_ms(const char *s, uint32_t *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "µs", 1e-3 },  { "ms", 1 },
		      { "s", 1000 },  { "m", 60000 }, { "h", 3600000 } };
	double total = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		size_t best = 0, best_len = 0;

		if (end == s || v < 0)
			return -EINVAL;
		s = end;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].unit);

			/* Longest match: "ms" before "m", "ns" before "s". */
			if (strncmp(s, units[i].unit, n) == 0 && n > best_len) {
				best = i;
				best_len = n;
			}
		}
		if (best_len == 0)
			return -EINVAL;
		total += v * units[best].ms;
		s += best_len;
	}
	if (total > 4294967295.0)
		return -EINVAL;
	*ms = (uint32_t)(total + 0.5);
	return 0;
}

static int set_string(char **field, const char *v)
{
	char *copy = NULL;

	if (v[0] != '\0') {
		copy = strdup(v);
		if (copy == NULL)
			return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

/* Apply one value; returns 0 or -EINVAL with why describing the problem. */
static int apply_key(struct notify_config *c, const struct key_desc *k, json_t *v, const char **why)
{
	char *base = (char *)c;

	switch (k->type) {
	case K_IGNORED:
		return 0;
	case K_STRING:
		if (!json_is_string(v)) {
			*why = "must be a string";
			return -EINVAL;
		}
		return set_string((char **)(base + k->offset), json_string_value(v));
	case K_URL: {
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;

		if (s == NULL ||
		    (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)) {
			*why = "must be an http:// or https:// URL";
			return -EINVAL;
		}
		return set_string((char **)(base + k->offset), s);
	}
	case K_METHOD: {
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;

		if (s == NULL || (strcasecmp(s, "POST") != 0 && strcasecmp(s, "PUT") != 0)) {
			*why = "must be \"POST\" or \"PUT\"";
			return -EINVAL;
		}
		return set_string((char **)(base + k->offset),
				  strcasecmp(s, "PUT") ? "POST" : "PUT");
	}
	case K_UINT: {
		json_int_t n;

		if (!json_is_integer(v)) {
			*why = "must be an integer";
			return -EINVAL;
		}
		n = json_integer_value(v);
		if (n < 0 || (uint64_t)n < k->min || (uint64_t)n > k->max) {
			*why = "is out of range";
			return -EINVAL;
		}
		*(uint32_t *)(base + k->offset) = (uint32_t)n;
		return 0;
	}
	case K_BOOL:
		if (json_is_boolean(v)) {
			*(bool *)(base + k->offset) = json_is_true(v);
			return 0;
		}
		if (json_is_integer(v) &&
		    (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
			*(bool *)(base + k->offset) = json_integer_value(v) == 1;
			return 0;
		}
		*why = "must be true or false";
		return -EINVAL;
	case K_DURATION: {
		uint32_t ms;

		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) <= UINT32_MAX) {
			ms = (uint32_t)json_integer_value(v);
		} else if (!json_is_string(v) ||
			   notify_parse_duration_ms(json_string_value(v), &ms) != 0) {
			*why = "must be a duration such as \"2s\" or \"500ms\"";
			return -EINVAL;
		}
		if (ms < k->min || ms > k->max) {
			*why = "is out of range";
			return -EINVAL;
		}
		*(uint32_t *)(base + k->offset) = ms;
		return 0;
	}
	}
	return -EINVAL;
}

static const struct key_desc *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

int notify_config_apply_object(struct notify_config *c, json_t *obj, bool strict,
			       const char *origin)
{
	struct notify_config tmp;
	const char *name;
	json_t *v;

	if (!json_is_object(obj)) {
		MIMO_ERR(COMP, "%s: configuration must be a JSON object", origin);
		return -EINVAL;
	}
	/* Apply to a copy so that an error leaves c untouched. */
	if (notify_config_copy(&tmp, c) != 0)
		return -ENOMEM;
	json_object_foreach(obj, name, v)
	{
		const struct key_desc *k = find_key(name);
		const char *why = "is invalid";
		int rc;

		if (k == NULL) {
			if (strict) {
				MIMO_ERR(COMP, "%s: unknown key \"%s\"", origin, name);
				notify_config_free(&tmp);
				return -EINVAL;
			}
			MIMO_WARN(COMP, "%s: unknown key \"%s\" ignored", origin, name);
			continue;
		}
		rc = apply_key(&tmp, k, v, &why);
		if (rc != 0) {
			MIMO_ERR(COMP, "%s: \"%s\" %s; configuration not applied", origin, name,
				 why);
			notify_config_free(&tmp);
			return rc;
		}
	}
	notify_config_free(c);
	*c = tmp;
	return 0;
}

static json_t *env_value(const struct key_desc *k, const char *s)
{
	char *end;
	unsigned long long n;

	switch (k->type) {
	case K_UINT:
		errno = 0;
		n = strtoull(s, &end, 10);
		if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || n > INT64_MAX)
			return NULL;
		return json_integer((json_int_t)n);
	case K_BOOL:
		if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
		    !strcasecmp(s, "on"))
			return json_true();
		if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
		    !strcasecmp(s, "off") || s[0] == '\0')
			return json_false();
		return NULL;
	default:
		return json_string(s);
	}
}

void notify_config_apply_env(struct notify_config *c)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key_desc *k = &keys[i];
		const char *s = k->env ? getenv(k->env) : NULL;
		const char *why = "is invalid";
		json_t *v;

		if (s == NULL)
			continue;
		v = env_value(k, s);
		if (v == NULL || apply_key(c, k, v, &why) != 0)
			MIMO_ERR(COMP, "environment %s=\"%s\" %s; ignored", k->env, s,
				 v == NULL ? "is not a valid value" : why);
		json_decref(v);
	}
}

static void apply_file(struct notify_config *c, const char *path)
{
	json_error_t err;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	char origin[512];

	snprintf(origin, sizeof(origin), "config file %s", path);
	if (doc == NULL) {
		MIMO_ERR(COMP, "%s: line %d: %s; file ignored", origin, err.line, err.text);
		return;
	}
	if (notify_config_apply_object(c, doc, false, origin) == 0)
		MIMO_DEBUG(COMP, "configuration read from %s", path);
	json_decref(doc);
}

void notify_config_apply_file(struct notify_config *c)
{
	const char *env = getenv("MIMO_NOTIFY_CONFIG");

	if (env != NULL && env[0] != '\0') {
		/* An explicit file is the only one consulted. */
		if (access(env, R_OK) != 0)
			MIMO_ERR(COMP, "MIMO_NOTIFY_CONFIG=%s: %s; using defaults", env,
				 strerror(errno));
		else
			apply_file(c, env);
		return;
	}
	for (size_t i = 0; i < sizeof(config_paths) / sizeof(config_paths[0]); i++) {
		if (access(config_paths[i], F_OK) == 0) {
			apply_file(c, config_paths[i]);
			return;
		}
	}
}

void notify_config_load(struct notify_config *c, json_t *api_overrides)
{
	notify_config_defaults(c);
	notify_config_apply_file(c);
	notify_config_apply_env(c);
	if (api_overrides != NULL)
		notify_config_apply_object(c, api_overrides, true, "mimo_notify_configure");
}
