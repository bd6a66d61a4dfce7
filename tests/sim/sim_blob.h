/* An immutable, reference-counted byte string: one callback body shared by every delivery of it
 * (targets, duplicates, retries) and by the attempt log, so no body is copied per attempt.
 * Thread: any (the count is atomic; the bytes never change). */
#ifndef SIM_BLOB_H
#define SIM_BLOB_H

#include <stddef.h>

struct sim_blob;

/* Returns a new blob holding a copy of the `len` bytes of `data` plus a NUL (one reference), or
 * NULL when out of memory. */
struct sim_blob *sim_blob_new(const char *data, size_t len);

/* Returns a new blob that takes ownership of `text`, a malloc'd NUL-terminated string, or NULL
 * (and frees `text`) when out of memory. */
struct sim_blob *sim_blob_take(char *text);

struct sim_blob *sim_blob_ref(struct sim_blob *b); /* one more reference; returns b */
void sim_blob_unref(struct sim_blob *b);           /* accepts NULL; frees with the last one */

const char *sim_blob_data(const struct sim_blob *b); /* NUL-terminated */
size_t sim_blob_len(const struct sim_blob *b);

#endif
