/*
 * bounce_rules - the phrase tables of the bounce classifier (bounce.c):
 * subjects, sender names, text phrases. Kept apart so that the tables can
 * grow with new MTAs without touching the logic. Matching is on lowercased
 * text (ASCII lowercasing; UTF-8 phrases are written lowercase).
 */
#ifndef SMTP_BOUNCE_RULES_H
#define SMTP_BOUNCE_RULES_H

#include <stdbool.h>
#include <stddef.h>

enum bounce_rule_table {
	RULES_SUBJECT_BOUNCE,     /* "undelivered mail returned to sender", "failure notice", ... */
	RULES_SUBJECT_AUTOREPLY,  /* "out of office", "automatic reply", "abwesenheit", ... */
	RULES_SUBJECT_CHALLENGE,  /* "please confirm", "verification required", ... */
	RULES_SUBJECT_FEEDBACK,   /* "complaint about message from", "abuse report", ... */
	RULES_SENDER_LOCAL,       /* local parts of daemon senders: exact match */
	RULES_SENDER_NAME,        /* display names of daemon senders: substring */
	RULES_TEXT_BOUNCE,        /* the explanation an MTA writes at the top of a bounce */
	RULES_TEXT_FAILURE,       /* words of failure anyone may write: weak */
	RULES_TEXT_SMTP_ERROR,    /* error texts quoted from SMTP replies */
	RULES_TEXT_DSN_FIELD,     /* delivery-status fields written into text */
	RULES_TEXT_AUTOREPLY,     /* "i am out of the office", ... */
	RULES_TEXT_CHALLENGE,     /* "please confirm you are a human", TMDA, Spam Arrest, Boxbe */
	RULES_TEXT_ORIGINAL,      /* "this is a copy of the message", "original message follows" */
	RULES_COUNT
};

/* bounce_rule_find - the first phrase of table t found in lowered (NUL-terminated,
 * lowercased), NULL when none. RULES_SENDER_LOCAL compares whole strings. */
const char *bounce_rule_find(enum bounce_rule_table t, const char *lowered);

/*
 * bounce_rule_scan - which of the tables in want (bits 1u << table; not
 * RULES_SENDER_LOCAL) have a phrase in lowered: one pass over the line,
 * whatever the number of phrases, through an index of every phrase by its
 * first two bytes (built once, on first use; read-only after). The same
 * answer as bounce_rule_find per table, at a fraction of the cost: the
 * classifier looks at every text line of every message.
 */
unsigned bounce_rule_scan(const char *lowered, unsigned want);

/* bounce_rule_find_near - the same, for a phrase that starts within the
 * first `within` bytes (a subject an MTA wrote starts with its phrase). */
const char *bounce_rule_find_near(enum bounce_rule_table t, const char *lowered, size_t within);

#endif
