/*
 * received_ip - where a message came from on the Internet: the first
 * external hop of its Received chain (the record of refused bounces,
 * filters/bounce_record.c). No I/O.
 *
 * The first external hop is the Received field added by the first MTA
 * that got the message from the sending machine (a spam run's zombie):
 * the bottom-most hop whose client address is a public one. Addresses
 * that are not (loopback, RFC 1918, CGNAT, link-local, unique-local,
 * documentation, benchmarking, multicast, reserved, IPv4-mapped forms of
 * those) are the sender's own network or made up. The hop's address is
 * the one bounce_parse_received() took from the from clause, the address
 * the receiving side saw. Below that hop everything is the sender's text.
 */
#ifndef SMTP_RECEIVED_IP_H
#define SMTP_RECEIVED_IP_H

#include <stdbool.h>

#include "smtp/bounce.h"

/* received_ip_external - ip (IPv4 dotted quad or IPv6 text, optionally
 * "IPv6:"-prefixed as in RFC 5321 address literals) parses and is a
 * public unicast address. */
bool received_ip_external(const char *ip);

/* received_first_external - the address of the bottom-most hop of o
 * whose address is external, NULL when none is. */
const char *received_first_external(const struct bounce_original *o);

#endif
