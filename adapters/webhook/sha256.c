/* SHA-256 of a webhook body in hex: the deduplication key of callbacks without an id. */
#include <openssl/evp.h>

#include "adapters/signature.h"

void sb_sha256_hex(const void *body, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!EVP_Digest(body, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
        /* Cannot fail for SHA-256 short of memory exhaustion: an empty key dedupes nothing. */
        out[0] = '\0';
        return;
    }
    /* By hand: 32 snprintf calls cost more than the digest of a typical body. */
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < md_len; i++) {
        out[(size_t)2 * i] = hex[md[i] >> 4];
        out[(size_t)2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}
