/*
 * batv - the BATV filter (filter_batv) and the "backstop batv" command.
 *
 * Inbound: refuse bounces to protected recipients that carry no valid prvs
 * tag; strip tags before relaying. Outbound: tag the envelope sender of
 * mail from the internal MTAs. See filters/batv.c and README-batv.md.
 */
#ifndef BATV_H
#define BATV_H

#include <stdbool.h>

#include "filters/filter.h"

struct config;
struct batv_keys;

extern const struct filter_ops filter_batv;

/*
 * batv_bounce_verdict - the verdict on a bounce that the DATA stage gives
 * with refuse_at = data (mode enforce: FILTER_REJECT, 550 5.7.1, with the
 * reason and a batv=fail(...) note; observe: FILTER_CONTINUE and an
 * X-Backstop-BATV field; a message that is no bounce, or whose recipients
 * verify: FILTER_CONTINUE). With refuse_at = content the DATA stage lets
 * the bounce go on and the bounce filter asks for this verdict at end of
 * data, where it knows what the message is. stage names the stage in the
 * log ("end of data").
 */
enum filter_result batv_bounce_verdict(const struct filter_env *env,
    struct filter_verdict *v, const char *stage);

/* batv_glob_ci - does s match pattern ('*' = any run of bytes, ASCII case
 * ignored)? The matcher of [batv] exempt and bounce_senders. */
bool batv_glob_ci(const char *pattern, const char *s);

/* batv_keys_current - the keys the BATV filter of the loop whose filter
 * state is filters (env->filters) verifies with (the last keys file
 * loaded there), or NULL when [batv] keys_file is not set or filters is
 * NULL. Loop thread only. */
const struct batv_keys *batv_keys_current(const struct filter_loop *filters);

/*
 * batv_cli - "batv sign ADDRESS" prints the tagged address (exit 0);
 * "batv verify ADDRESS" prints "valid <stripped>" (exit 0) or the status
 * text (exit 1). argv starts at "sign"/"verify" (a leading "batv" is
 * skipped). Usage and keys-file errors go to stderr with exit 2.
 */
int batv_cli(int argc, char **argv, const struct config *cfg);

#endif
