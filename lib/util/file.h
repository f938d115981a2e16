/* File helpers with explicit durability. */
#ifndef MIMO_UTIL_FILE_H
#define MIMO_UTIL_FILE_H

#include <stddef.h>

/*
 * Write data to dir/name so that, once this returns 0, the file survives a crash of the
 * process or the machine: write to a temporary file, fsync it, rename it over name, fsync the
 * directory. Readers never see a partial file. mode is the new file's permission bits.
 */
int mimo_file_write_durable(const char *dir, const char *name, const void *data, size_t len,
			    unsigned mode);

/* Read a whole file into a malloc'd NUL-terminated buffer of at most max bytes.
 * Returns 0 and sets *out and *len, or a negative errno (-EFBIG when larger than max). */
int mimo_file_read_all(const char *path, size_t max, char **out, size_t *len);

/* write(2) all of len bytes, retrying short writes and EINTR. Returns 0 or a negative errno. */
int mimo_write_all(int fd, const void *data, size_t len);

/* mkdir -p with the given mode for directories it creates. */
int mimo_mkdir_p(const char *path, unsigned mode);

#endif
