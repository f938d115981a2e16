/*
 * Bdev names as file names under bdevs/ (see docs/fuse.md, "File names").
 *
 * A bdev name that is a valid file name (1 to 255 bytes, no '/', neither "." nor "..") is its
 * own file name, always: every bdev that was reachable before names were mapped keeps its path.
 * Any other name (an lvol alias "lvs/lvol", "..", a name of more than 255 bytes) is escaped in
 * the \xHH style of udev's /dev/disk/by-label links: '/' -> \x2f, '\' -> \x5c, '~' -> \x7e (and
 * each dot of "." or ".." -> \x2e). If that is longer than 255 bytes, or is the name of a bdev
 * in the same directory, the file name is a prefix of the escaped name, '~', and 32 hex digits
 * of the name's SHA-256 (then of SHA-256(digest, 1), (digest, 2)... while that too is taken).
 *
 * No two bdevs get one file name: escaping is one-to-one; an escaped name never holds a bare
 * '~' (it is escaped), while a hashed one always does; hashed names differ by their digests;
 * and a bdev's own name always wins over any mapped one. Pure functions, no state: the fuzz
 * target links this file alone.
 */
#ifndef MIMO_FUSE_FNAME_H
#define MIMO_FUSE_FNAME_H

#include <stdbool.h>
#include <stddef.h>

/* The longest file name (NAME_MAX): what statfs reports and what tools expect. */
#define FUSE_FNAME_MAX 255
/* Hashed names: up to FUSE_FNAME_PREFIX bytes of the escaped name, '~', the digest in hex. */
#define FUSE_FNAME_HASH_HEX 32
#define FUSE_FNAME_PREFIX   (FUSE_FNAME_MAX - 1 - FUSE_FNAME_HASH_HEX)

/* Whether name is a valid file name as it is (and so its own file name). */
bool fuse_fname_is_plain(const char *name);

/* Write name escaped into out (cap bytes, NUL-terminated if cap > 0) and return the length of
 * the whole escaped name, as snprintf does: it fitted if that is < cap. */
size_t fuse_fname_escape(const char *name, char *out, size_t cap);

/* Undo fuse_fname_escape: \xHH (either case) becomes byte HH. out needs strlen(fname) + 1 bytes.
 * false for "\x00" (no name holds a NUL) or when escaping the result again does not give fname
 * back (it is not what fuse_fname_escape makes: the escape of no name). */
bool fuse_fname_unescape(const char *fname, char *out);

/* Whether fname has the shape of a hashed name ('~' and 32 lowercase hex digits at its end). */
bool fuse_fname_is_hashed(const char *fname);

/* Whether a bdev shown in the same directory is named fname. */
typedef bool (*fuse_fname_taken_fn)(void *ctx, const char *fname);

/* The file name of bdev name (non-empty, NUL-terminated) into out. */
void fuse_fname_map(const char *name, fuse_fname_taken_fn taken, void *ctx,
		    char out[FUSE_FNAME_MAX + 1]);

#endif
