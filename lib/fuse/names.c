/*
 * The file names of an export's bdevs: fname.c's rules applied to the bdevs the export shows
 * now. "Taken" means: a bdev this export shows has that very name - a bdev its `bdevs` filter
 * leaves out does not push another's file name aside.
 *
 * A listing (and the names file) works from one snapshot of the bdev list, with its names in a
 * hash set, so mapping n names costs O(n). A lookup asks the bdev layer name by name instead:
 * a plain name is found at once, an escaped one is decoded, and only a hashed one - which
 * cannot be decoded - is searched for in a snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fname.h"
#include "fuse_internal.h"

/* --- against the live bdevs --------------------------------------------------------------- */

/* Whether exp shows a bdev of exactly this name (not one that only has it as its UUID). */
static bool shown_now(struct fuse_export *exp, const char *name)
{
	json_t *info;
	const char *real;
	bool shown;

	if (!fuse_export_allows(exp, name))
		return false;
	info = mimo_bdev_find_json(name);
	real = json_string_value(json_object_get(info, "name"));
	shown = real != NULL && strcmp(real, name) == 0;
	json_decref(info);
	return shown;
}

static bool taken_now(void *ctx, const char *fname)
{
	return shown_now(ctx, fname);
}

void fuse_names_file_of(struct fuse_export *exp, const char *name, char out[FUSE_FNAME_MAX + 1])
{
	fuse_fname_map(name, taken_now, exp, out);
}

/* --- against a snapshot ------------------------------------------------------------------- */

int fuse_names_snapshot(struct fuse_export *exp, struct fuse_names_snap *s)
{
	json_t *list = mimo_bdev_list_json(), *bd;
	size_t i;

	s->bdevs = json_array();
	s->set = json_object();
	if (list == NULL || s->bdevs == NULL || s->set == NULL) {
		json_decref(list);
		fuse_names_snap_free(s);
		return -ENOMEM;
	}
	json_array_foreach(list, i, bd)
	{
		const char *name = json_string_value(json_object_get(bd, "name"));

		if (name == NULL || !fuse_export_allows(exp, name))
			continue;
		/* nocheck: a name from the C API need not be UTF-8. */
		if (json_array_append(s->bdevs, bd) != 0 ||
		    json_object_set_new_nocheck(s->set, name, json_true()) != 0) {
			json_decref(list);
			fuse_names_snap_free(s);
			return -ENOMEM;
		}
	}
	json_decref(list);
	return 0;
}

void fuse_names_snap_free(struct fuse_names_snap *s)
{
	json_decref(s->bdevs);
	json_decref(s->set);
	s->bdevs = s->set = NULL;
}

static bool taken_in(void *ctx, const char *fname)
{
	const struct fuse_names_snap *s = ctx;

	return json_object_get(s->set, fname) != NULL;
}

void fuse_names_snap_file_of(const struct fuse_names_snap *s, const char *name,
			     char out[FUSE_FNAME_MAX + 1])
{
	fuse_fname_map(name, taken_in, (void *)(uintptr_t)s, out);
}

/* --- file name -> bdev -------------------------------------------------------------------- */

/* The bdev whose hashed file name is fname, searched for in a snapshot. */
static int resolve_hashed(struct fuse_export *exp, const char *fname, char **name)
{
	struct fuse_names_snap s;
	char mine[FUSE_FNAME_MAX + 1];
	json_t *bd;
	size_t i;
	int rc = -ENOENT;

	if (fuse_names_snapshot(exp, &s) != 0)
		return -ENOMEM;
	json_array_foreach(s.bdevs, i, bd)
	{
		const char *n = json_string_value(json_object_get(bd, "name"));

		if (fuse_fname_is_plain(n))
			continue; /* its own name, which is not fname (fname is nobody's) */
		fuse_names_snap_file_of(&s, n, mine);
		if (strcmp(mine, fname) == 0) {
			rc = (*name = strdup(n)) != NULL ? 0 : -ENOMEM;
			break;
		}
	}
	fuse_names_snap_free(&s);
	return rc;
}

int fuse_names_resolve(struct fuse_export *exp, const char *fname, char **name)
{
	char mine[FUSE_FNAME_MAX + 1];
	char *x;

	*name = NULL;
	/* Every mapped name holds an escape or is hashed: any other name is nobody's, at no cost
	 * (tab completion, stat of absent files). */
	if (fuse_fname_is_hashed(fname))
		return resolve_hashed(exp, fname, name);
	if (strstr(fname, "\\x") == NULL)
		return -ENOENT;
	if ((x = malloc(strlen(fname) + 1)) == NULL)
		return -ENOMEM;
	/* An escaped name: the bdev it decodes to, if that one is shown under it now. */
	if (fuse_fname_unescape(fname, x) && !fuse_fname_is_plain(x) && shown_now(exp, x)) {
		fuse_names_file_of(exp, x, mine);
		if (strcmp(mine, fname) == 0) {
			*name = x;
			return 0;
		}
	}
	free(x);
	return -ENOENT;
}

/* --- the names file ----------------------------------------------------------------------- */

char *fuse_names_index(struct fuse_export *exp, size_t *len)
{
	struct fuse_names_snap s;
	struct mimo_buf out = { 0 };
	char fname[FUSE_FNAME_MAX + 1];
	json_t *bd;
	size_t i;
	int rc = 0;

	if (fuse_names_snapshot(exp, &s) != 0)
		return NULL;
	json_array_foreach(s.bdevs, i, bd)
	{
		const char *n = json_string_value(json_object_get(bd, "name"));
		json_t *line;
		char *text;

		fuse_names_snap_file_of(&s, n, fname);
		/* nocheck: names from the C API need not be UTF-8; the line is written as is. */
		line = json_pack("{s:o, s:o, s:O}", "file",
				 json_stringn_nocheck(fname, strlen(fname)), "bdev",
				 json_stringn_nocheck(n, strlen(n)), "uuid",
				 json_object_get(bd, "uuid"));
		text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
		json_decref(line);
		if (text == NULL || mimo_buf_append_str(&out, text) != 0 ||
		    mimo_buf_append(&out, "\n", 1) != 0)
			rc = -ENOMEM;
		free(text);
		if (rc != 0)
			break;
	}
	fuse_names_snap_free(&s);
	if (rc != 0) {
		mimo_buf_free(&out);
		return NULL;
	}
	if (out.data == NULL && (out.data = calloc(1, 1)) == NULL) /* no bdevs: empty, not NULL */
		return NULL;
	*len = out.len;
	return out.data;
}
