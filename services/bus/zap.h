/*  zap: the ZAP (RFC 27) handler that admits CURVE peers by an allow-list of public keys
 *  and names each key's principal. Polled by the broker's own loop; no thread.
 */
#ifndef ZAP_H
#define ZAP_H

typedef struct zap_t zap_t;

/* Binds inproc://zeromq.zap.01 and loads the allow-list; NULL if either fails. */
zap_t *zap_new (const char *allow_file);
void zap_destroy (zap_t **self_p);
/* The REP socket (a zsock_t *) to poll for readability. */
void *zap_sock (zap_t *self);
/* Answers one pending ZAP request. */
void zap_handle (zap_t *self);

#endif
