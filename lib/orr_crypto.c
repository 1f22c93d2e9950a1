/*  orr_crypto: SHA-256, HMAC-SHA256, constant-time comparison and token generation.
 *
 *  Thin wrappers over libcrypto's one-shot functions (no contexts kept, so every function
 *  is thread-safe). Randomness comes from orr_random_hex (the kernel's CSPRNG).
 */
#include "orr_crypto.h"
#include "orr_util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

void
orr_sha256_hex (const void *data, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL);
    orr_hex_encode (md, 32, out);
}

void
orr_hmac_sha256_hex (const char *key, const void *data, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    HMAC (EVP_sha256 (), key, (int) strlen (key), data, len, md, &mdlen);
    orr_hex_encode (md, 32, out);
}

bool
orr_secret_equal (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp (a, b, la) == 0;
}

void
orr_token_new (char *out)
{
    orr_random_hex (out, ORR_TOKEN_HEX_LEN / 2);
}
