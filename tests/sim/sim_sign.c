/* HMAC-SHA256 through OpenSSL 3's EVP_MAC interface, fed in five pieces so that the body is
 * never copied; EVP_EncodeBlock gives padded base64 without a newline. */
#include "sim_sign.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

bool sim_sign(const char *secret, const char *body, size_t len, const char *nonce,
              const char *timestamp, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    /* EVP_MAC_init refuses a NULL key even of length 0; an empty secret is still a key. */
    static const unsigned char empty[1] = {0};
    const unsigned char *key = secret[0] ? (const unsigned char *)secret : empty;
    bool ok = ctx && EVP_MAC_init(ctx, key, strlen(secret), params) &&
              EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
              EVP_MAC_update(ctx, (const unsigned char *)nonce, strlen(nonce)) &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
              EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp)) &&
              EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) && mac_len == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    if (!ok) {
        out[0] = '\0';
        return false;
    }
    unsigned char b64[SIM_SIGNATURE_LEN + 1];
    int n = EVP_EncodeBlock(b64, mac, (int)mac_len);
    if (n != SIM_SIGNATURE_LEN) {
        out[0] = '\0';
        return false;
    }
    memcpy(out, b64, SIM_SIGNATURE_LEN + 1);
    return true;
}
