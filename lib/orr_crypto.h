/*  orr_crypto: the few cryptographic primitives identity needs, on OpenSSL's libcrypto.
 *
 *  Tokens are 128-bit random values shown once and stored only as their SHA-256, so a
 *  leaked Redis dump yields no usable credential; a fast hash suffices because tokens have
 *  full entropy (passwords, which do not, use a slow KDF in the auth service). Cookies
 *  and XSRF values are HMAC-SHA256 signed with a key kept in Redis. Secrets are compared
 *  in constant time.
 */
#ifndef ORR_CRYPTO_H
#define ORR_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define ORR_SHA256_HEX_LEN 64
#define ORR_TOKEN_HEX_LEN 32

/* SHA-256 of `len` bytes as 64 lowercase hex chars + NUL into out (>= 65 bytes). */
void orr_sha256_hex (const void *data, size_t len, char *out);

/* HMAC-SHA256(key, data) as 64 lowercase hex chars + NUL into out (>= 65 bytes). */
void orr_hmac_sha256_hex (const char *key, const void *data, size_t len, char *out);

/* True when a and b (NUL-terminated) are equal; the time taken depends only on their
 * lengths, never on where they differ. */
bool orr_secret_equal (const char *a, const char *b);

/* A new API token: 32 lowercase hex chars + NUL into out (>= 33 bytes). */
void orr_token_new (char *out);

#endif
