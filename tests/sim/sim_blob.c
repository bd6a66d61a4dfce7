/* A blob is a header and a pointer to its bytes; C11 atomics count the references. */
#include "sim_blob.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct sim_blob {
    atomic_uint refs;
    size_t len;
    char *data; /* owned */
};

struct sim_blob *sim_blob_take(char *text)
{
    struct sim_blob *b = text ? malloc(sizeof(*b)) : NULL;
    if (!b) {
        free(text);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->len = strlen(text);
    b->data = text;
    return b;
}

struct sim_blob *sim_blob_new(const char *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        return NULL;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    struct sim_blob *b = sim_blob_take(copy);
    if (b) {
        b->len = len; /* the data may hold NUL bytes */
    }
    return b;
}

struct sim_blob *sim_blob_ref(struct sim_blob *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void sim_blob_unref(struct sim_blob *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        free(b->data);
        free(b);
    }
}

const char *sim_blob_data(const struct sim_blob *b)
{
    return b->data;
}

size_t sim_blob_len(const struct sim_blob *b)
{
    return b->len;
}
