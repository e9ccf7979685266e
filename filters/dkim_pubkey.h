/*
 * dkim_pubkey - parsed DKIM public keys, kept by their bytes, in front of
 * libopendkim's d2i_PUBKEY_bio() calls.
 *
 * Why: libopendkim 2.11 turns each signature's key (the p= tag, base64
 * decoded) into an EVP_PKEY with d2i_PUBKEY_bio() on a memory BIO, once
 * per signature and message. OpenSSL 3.0 builds a decoder context for
 * every such call (OSSL_DECODER_CTX_new_for_pkey: a walk over the
 * providers' decoders, name lookups under a read lock): measured with perf
 * during content_bench (2 KB, c=50), about a quarter of backstop's CPU with
 * SPF, DKIM and DMARC on - four times the RSA verification itself.
 * libopendkim offers no way to be handed a parsed key, so this module
 * defines d2i_PUBKEY_bio() in the executable: the dynamic linker binds
 * libopendkim's reference to it (the executable comes first in the lookup
 * order). For a memory BIO and no object to reuse (libopendkim's call)
 * the bytes are looked up here; a hit gives the key parsed earlier with
 * one more reference (the caller's EVP_PKEY_free() drops it). Every other
 * call does what OpenSSL's own function does.
 *
 * A key is a function of its bytes, so this changes no result, only the
 * cost: which bytes are used is still decided by each message's DNS
 * answer (the key record's TTL, [dns] cache). The table is small and
 * bounded (DKIM_PUBKEY_SLOTS, least recently used replaced) and holds
 * keys of at most DKIM_PUBKEY_DER_MAX bytes; it is locked (any thread may
 * call d2i_PUBKEY_bio), though only the loop thread verifies DKIM.
 */
#ifndef FILTERS_DKIM_PUBKEY_H
#define FILTERS_DKIM_PUBKEY_H

#include <stdbool.h>
#include <stdint.h>

#define DKIM_PUBKEY_SLOTS 64
/* an RSA-4096 SubjectPublicKeyInfo is 550 bytes; libopendkim's key
 * buffer is 1 KiB of base64 */
#define DKIM_PUBKEY_DER_MAX 2048

/* dkim_pubkey_interposed - whether the process's d2i_PUBKEY_bio (what
 * libopendkim calls) is this module's: false when the executable was
 * linked without it in its dynamic symbols. */
bool dkim_pubkey_interposed(void);

/* dkim_pubkey_counts - keys answered from the table, and parsed, since
 * the start (any thread). */
void dkim_pubkey_counts(uint64_t *hits, uint64_t *parsed);

/* dkim_pubkey_flush - drop every kept key (tests; shutdown). */
void dkim_pubkey_flush(void);

#endif
