/*
 * Fuzz the FUSE export's bdev-name-to-file-name mapping (lib/fuse/fname.c).
 *
 * The input is one or two names (split at the first NUL; a NUL cannot be in a name). Checked:
 *  - escaping round-trips (unescape(escape(x)) == x) and never gives '/', "." or "..";
 *  - an escaped name is never shaped like a hashed one (that keeps the two kinds apart);
 *  - every mapped name is one valid path component (1-255 bytes, no '/', not "." or ".."),
 *    a plain name maps to itself, and an escaped one decodes back to the name;
 *  - two different names never get one file name, with each other's names taken;
 *  - a name taken is skipped, however many of the candidates are;
 *  - whatever unescape accepts is canonical: escaping it again gives the input back.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fname.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static bool valid_component(const char *f)
{
	size_t len = strlen(f);

	return len > 0 && len <= FUSE_FNAME_MAX && strchr(f, '/') == NULL && strcmp(f, ".") != 0 &&
	       strcmp(f, "..") != 0;
}

static void check_escape(const char *x)
{
	size_t len = fuse_fname_escape(x, NULL, 0);
	char *e = malloc(len + 1), *back = malloc(len + 1);

	CHECK(e != NULL && back != NULL);
	CHECK(fuse_fname_escape(x, e, len + 1) == len && strlen(e) == len);
	CHECK(strchr(e, '/') == NULL && strcmp(e, ".") != 0 && strcmp(e, "..") != 0);
	CHECK(!fuse_fname_is_hashed(e));
	CHECK(fuse_fname_unescape(e, back) && strcmp(back, x) == 0);
	free(e);
	free(back);
}

/* Taken: the names in a NULL-terminated list, plus the first `extra` names asked about. */
struct taken_ctx {
	const char *const *names;
	unsigned extra;
	char seen[8][FUSE_FNAME_MAX + 1];
	unsigned n_seen;
};

static bool taken(void *arg, const char *fname)
{
	struct taken_ctx *t = arg;

	CHECK(valid_component(fname)); /* only file names are ever asked about */
	for (const char *const *n = t->names; *n != NULL; n++) {
		if (strcmp(*n, fname) == 0)
			return true;
	}
	if (t->n_seen < t->extra && t->n_seen < 8) {
		strcpy(t->seen[t->n_seen++], fname);
		return true;
	}
	return false;
}

static void check_map(const char *x, struct taken_ctx *t, char out[FUSE_FNAME_MAX + 1])
{
	char back[FUSE_FNAME_MAX + 1];

	fuse_fname_map(x, taken, t, out);
	CHECK(valid_component(out));
	if (fuse_fname_is_plain(x)) {
		CHECK(strcmp(out, x) == 0);
		return;
	}
	for (unsigned i = 0; i < t->n_seen; i++) /* every candidate refused was skipped */
		CHECK(strcmp(out, t->seen[i]) != 0);
	if (!fuse_fname_is_hashed(out))
		CHECK(fuse_fname_unescape(out, back) && strcmp(back, x) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *a, *b, *u;
	char fa[FUSE_FNAME_MAX + 1], fb[FUSE_FNAME_MAX + 1];
	unsigned extra = size > 0 ? data[0] % 4 : 0;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	a = buf;
	b = buf + strlen(buf) + 1; /* after the first NUL; empty when there is none */

	/* Any input as a file name: what unescape accepts is canonical. */
	if ((u = malloc(strlen(a) + 1)) != NULL) {
		if (fuse_fname_unescape(a, u)) {
			char *again = malloc(4 * strlen(u) + 1);

			CHECK(again != NULL);
			fuse_fname_escape(u, again, 4 * strlen(u) + 1);
			CHECK(strcmp(again, a) == 0);
			free(again);
		}
		free(u);
	}
	if (*a != '\0') {
		const char *names[] = { a, *b != '\0' ? b : NULL, NULL };
		struct taken_ctx ta = { .names = names, .extra = extra };

		check_escape(a);
		check_map(a, &ta, fa);
		if (*b != '\0' && strcmp(a, b) != 0) {
			struct taken_ctx tb = { .names = names, .extra = extra };

			check_escape(b);
			check_map(b, &tb, fb);
			/* ta and tb refuse the same first candidates: both as a directory would. */
			CHECK(strcmp(fa, fb) != 0);
		}
	}
	free(buf);
	return 0;
}
