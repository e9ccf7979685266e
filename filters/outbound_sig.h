/*
 * outbound_sig - on the [outbound] listener, sign every relayed message
 * (X-Backstop-Sig, filters/bsig.h) and remember the (Message-ID, sender) of every
 * message the relay accepted (filters/sentlog.h); the "backstop sentlog"
 * command. See outbound_sig.c.
 */
#ifndef OUTBOUND_SIG_H
#define OUTBOUND_SIG_H

#include <stdbool.h>

#include "filters/filter.h"
#include "filters/sentlog.h"

struct config;

extern const struct filter_ops filter_outbound_sig;

/*
 * outbound_sig_sentlog - the sent-message log of the loop whose filter
 * state is filters (env->filters), for the bounce check: NULL when no
 * [outbound] listener is configured (nothing is ever sent, nothing to
 * remember), it could not be opened, or filters is NULL. Loop thread only.
 */
struct sentlog *outbound_sig_sentlog(const struct filter_loop *filters);

/* outbound_sig_remember_days - [bounce] remember in whole days (rounded up). */
unsigned outbound_sig_remember_days(const struct config *cfg);

/*
 * outbound_sig_cli - "sentlog contains MESSAGE-ID SENDER": did SENDER send
 * MESSAGE-ID? prints "sent" (exit 0)
 * or "not found" (exit 1) from the state file as last flushed; argv starts
 * at "contains" (a leading "sentlog" is skipped). Usage, keys-file and
 * state errors go to stderr with exit 2.
 */
int outbound_sig_cli(int argc, char **argv, const struct config *cfg);

#endif
