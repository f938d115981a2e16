/*
 * Consumers' cursors: the position after the last record each released, kept in
 * state_dir/up/cursors.json so that a restarted agent goes on where it was.
 */
#include "upq_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "file.h"
#include "log.h"

#define COMP UPQ_COMP

void upq_consumer_name(bool single, uint64_t slot, char *out, size_t len)
{
	if (single)
		snprintf(out, len, "all");
	else
		snprintf(out, len, "slot-%" PRIu64, slot);
}

struct cursor_ent *upq_cursor_find(struct upq *q, const char *name)
{
	for (size_t i = 0; i < q->ncursors; i++) {
		if (strcmp(q->cursors[i].name, name) == 0)
			return &q->cursors[i];
	}
	return NULL;
}

struct cursor_ent *upq_cursor_get(struct upq *q, const char *name)
{
	struct cursor_ent *c = upq_cursor_find(q, name), *n;

	if (c != NULL)
		return c;
	n = realloc(q->cursors, (q->ncursors + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	q->cursors = n;
	c = &q->cursors[q->ncursors++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

void upq_cursors_load(struct upq *q)
{
	char path[PATH_MAX];
	json_t *root, *v;
	const char *k;

	snprintf(path, sizeof(path), "%s/%s", q->dir, UPQ_CURSORS_FILE);
	root = json_load_file(path, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return;
	}
	json_object_foreach(root, k, v)
	{
		struct cursor_ent *c;

		if (!json_is_array(v) || json_array_size(v) != 2 || strlen(k) >= 32)
			continue;
		c = upq_cursor_get(q, k);
		if (c == NULL)
			break;
		c->pos.seg = (uint64_t)json_integer_value(json_array_get(v, 0));
		c->pos.off = (uint64_t)json_integer_value(json_array_get(v, 1));
	}
	json_decref(root);
}

/* Write the cursors (rename over the old file). fsync only at close: a lost update means
 * records delivered again, never records lost. */
void upq_cursors_save_locked(struct upq *q, bool sync)
{
	json_t *root = json_object();
	char *text;
	int rc;

	for (struct upq_consumer *c = q->consumers; c != NULL; c = c->next) {
		struct cursor_ent *e = upq_cursor_get(q, c->name);

		if (e != NULL)
			e->pos = c->cursor;
	}
	for (size_t i = 0; i < q->ncursors; i++)
		json_object_set_new(root, q->cursors[i].name,
				    json_pack("[I, I]", (json_int_t)q->cursors[i].pos.seg,
					      (json_int_t)q->cursors[i].pos.off));
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		return;
	if (sync) {
		rc = mimo_file_write_durable(q->dir, UPQ_CURSORS_FILE, text, strlen(text), 0600);
	} else {
		char tmp[PATH_MAX], path[PATH_MAX];
		int fd;

		snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", q->dir, UPQ_CURSORS_FILE);
		snprintf(path, sizeof(path), "%s/%s", q->dir, UPQ_CURSORS_FILE);
		rc = -EIO;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
			    rename(tmp, path) == 0)
				rc = 0;
			close(fd);
		}
	}
	if (rc != 0)
		MIMO_WARN(COMP, "cannot save cursors in %s: %s", q->dir, strerror(-rc));
	free(text);
	q->cursors_dirty = false;
	q->saved_ns = mimo_now_ns();
}
