/*
 * batv - the BATV filter (filter_batv) and the "backstop batv" command.
 *
 * Inbound: refuse bounces to protected recipients that carry no valid prvs
 * tag; strip tags before relaying. Outbound: tag the envelope sender of
 * mail from the internal MTAs. See filters/batv.c and README-batv.md.
 */
#ifndef BATV_H
#define BATV_H

#include "filters/filter.h"

struct config;

extern const struct filter_ops filter_batv;

/*
 * batv_cli - "batv sign ADDRESS" prints the tagged address (exit 0);
 * "batv verify ADDRESS" prints "valid <stripped>" (exit 0) or the status
 * text (exit 1). argv starts at "sign"/"verify" (a leading "batv" is
 * skipped). Usage and keys-file errors go to stderr with exit 2.
 */
int batv_cli(int argc, char **argv, const struct config *cfg);

#endif
