/*  auth_password: built-in passwords, hashed with yescrypt through libcrypt (libxcrypt).
 *
 *  yescrypt is Debian's default for /etc/shadow: slow and memory-hard, so a stolen Redis
 *  dump does not give passwords away cheaply. crypt_gensalt_rn picks libxcrypt's default
 *  cost; the stored string carries its own parameters, so raising the cost later keeps
 *  old hashes valid. The re-entrant crypt_rn is used because the service may one day run
 *  handlers on several threads.
 */
#include "auth.h"
#include "orr_crypto.h"
#include "orr_util.h"

#include <crypt.h>
#include <string.h>

char *
auth_password_hash (const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn ("$y$", 0, NULL, 0, salt, sizeof salt))
        return NULL;
    struct crypt_data *data = orr_zalloc (sizeof *data);
    char *out = crypt_rn (password, salt, data, sizeof *data);
    char *hash = out && out[0] != '*' ? orr_strdup (out) : NULL;
    free (data);
    return hash;
}

bool
auth_password_verify (const char *password, const char *hash)
{
    if (!hash || !*hash)
        return false;
    struct crypt_data *data = orr_zalloc (sizeof *data);
    char *out = crypt_rn (password, hash, data, sizeof *data);
    bool ok = out && out[0] != '*' && orr_secret_equal (out, hash);
    free (data);
    return ok;
}
