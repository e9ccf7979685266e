/*
 * bounce_record - the "bounce_refused" log record: one per refused bounce,
 * the evidence of the spam run that forged our addresses (README.md
 * "Backscatter report"; read back by `backstop report`, proxy/report.c).
 */
#ifndef BOUNCE_RECORD_H
#define BOUNCE_RECORD_H

#include "filters/filter.h"
#include "smtp/bounce.h"

/*
 * bounce_record_refused - log the record for a bounce refused to rcpt;
 * reason is a token ("no_evidence", "unverifiable", "batv"). JSON members:
 * server_ip, server_name, helo (the bouncing server), rcpt, sender (the
 * bounce's envelope sender), class, reason, orig_sender (the original's
 * envelope sender, else its From:), orig_client_ip (the client the
 * bouncing site's entry MTA saw: smtp/received_ip.h), subject (RFC 2047 decoded),
 * message_id, url_hosts (array, url_hosts.h) - null when unknown. Text: the
 * same as key=value pairs, values escaped.
 */
void bounce_record_refused(const struct filter_env *env, const struct bounce_result *r,
    const char *rcpt, const char *reason);

#endif
