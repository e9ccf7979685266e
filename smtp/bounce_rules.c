/*
 * bounce_rules - phrase tables (see bounce_rules.h). Each phrase is one an
 * MTA or an auto-responder writes; generic words ("error", "failed") are
 * left out on purpose: they are in ordinary mail too. A phrase only adds
 * to a score (bounce.c): no table alone makes a message a bounce.
 */
#include "smtp/bounce_rules.h"

#include <pthread.h>
#include <string.h>

static const char *const subject_bounce[] = {
	"undelivered mail", "undeliverable", "undelivered message", "undelivered:",
	"delivery status notification", "delivery notification", "delivery failure",
	"delivery failed", "delivery has failed", "delivery problem", "mail delivery failed",
	"mail delivery failure", "failure notice", "failure delivery", "failed delivery",
	"returned mail", "returned to sender", "returning message to sender",
	"return to sender", "mail system error", "could not be delivered",
	"could not send message", "could not send mail", "cannot be delivered",
	"not be delivered", "nondeliverable", "non-deliverable", "non delivery",
	"non-delivery", "delivery status", "delivery report", "delivery delayed",
	"delivery has been delayed", "delayed mail", "mail delivery delayed",
	"postmaster notify", "permanent delivery failure", "mail failure",
	"mail failed", "error sending your mail", "message you sent blocked",
	"message delivery has failed", "undeliverable mail", "non remis",
	"non recapitabile", "unzustellbar", "nicht zustellbar", "onbestelbaar",
	"no se puede entregar", "mensagem n\xc3\xa3o entregue", "\xc3\xa9" "chec de la remise",
	"returned mail:", "delivery error", "mail could not be delivered",
	"\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x82\xa8\xe3\x83\xa9\xe3\x83\xbc",   /* メールエラー */
	NULL
};

/* Matched near the start of the subject only (bounce.c): auto-responders
 * put them first ("Automatic reply: <subject>"); "Your vacation booking"
 * is no auto-reply. */
static const char *const subject_autoreply[] = {
	"out of office", "out of the office", "automatic reply", "auto reply", "auto-reply",
	"autoreply", "auto response", "auto-response", "autoresponse", "autorespons",
	"automatische antwort", "abwesenheit", "abwesend", "r\xc3\xa9ponse automatique",
	"risposta automatica", "respuesta autom\xc3\xa1tica", "automatisch antwoord",
	"afwezig", "vacation reply", "vacation:", "on vacation", "vacation notice",
	"vacation auto", "away until", "away from the office", "on leave", "ooo:",
	"i am away", "i'm away", "autosvar",
	NULL
};

static const char *const subject_challenge[] = {
	"please confirm your message", "confirm your message", "verification required",
	"verify your email", "please verify", "awaiting your confirmation",
	"message held", "is protected by", "spam arrest", "boxbe", "tmda",
	"challenge", "sender verification", "confirm you are a human",
	NULL
};

/* Local parts of the senders of non-delivery reports (RFC 3464 has none;
 * these are what MTAs use by convention). Not "mailer", "bounce", "noreply":
 * bulk senders use those for ordinary mail. */
static const char *const sender_local[] = {
	"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "maildaemon",
	"postmaster", "post_master", "mail.delivery.system", "mail-delivery-system",
	NULL
};

/* Display names MTAs give their reports ("Mail Delivery System", "Mail
 * Delivery Subsystem", "Mailer Daemon"); not "System Administrator": a
 * person's IT desk writes as that. */
static const char *const sender_name[] = {
	"mail delivery system", "mail delivery subsystem", "mail delivery service",
	"mailer-daemon", "mailer daemon", "mail administrator", "mail system",
	"delivery subsystem", "mail.delivery",
	NULL
};

/* The boilerplate MTAs write at the top of a bounce: long, specific
 * sentences a person rarely writes. */
static const char *const text_bounce[] = {
	"this is the mail system at host",
	"i'm sorry to have to inform you that your message could not",
	"i'm afraid i wasn't able to deliver",
	"this message was created automatically by mail delivery software",
	"a message that you sent could not be delivered",
	"a message that you sent has not yet been delivered",
	"this is the qmail-send program",
	"the original message was received at",
	"the following addresses had permanent fatal errors",
	"the following addresses had transient non-fatal errors",
	"transcript of session follows",
	"delivery to the following recipient",
	"delivery has failed to these recipients",
	"delivery is delayed to these recipients",
	"your message did not reach some or all",
	"your message couldn't be delivered",
	"your message wasn't delivered",
	"your message to the following recipients cannot be delivered",
	"could not be delivered to the following",
	"could not be delivered to one or more",
	"unable to deliver message to the following",
	"we were unable to deliver your message",
	"the following message to <",
	"this is an automatically generated delivery status notification",
	"the following recipient(s) could not be reached",
	"the following recipients could not be reached",
	"could not be reached for the following reason",
	"your mail message to the following address",
	"the following addresses had delivery problems",
	"there was an error sending your mail",
	"the email account that you tried to reach does not exist",
	"permanent error. the following",
	"sorry, we were unable to deliver",
	"this is an automatic message from the mail delivery",
	"message from the mail system",
	"this message is to inform you that an email you sent was rejected",
	"delivery to these recipients or groups",
	"an error occurred while trying to deliver",
	"this is a delivery failure notification",
	"error transferring to",
	"this report relates to a message you sent",
	"the following recipient addresses failed",
	"message delivery to the following",
	/* Amazon SES bounce notifications (JSON, or JSON quoted in SNS JSON) */
	"\"notificationtype\":\"bounce\"", "\"notificationtype\": \"bounce\"",
	"notificationtype\\\":\\\"bounce",
	NULL
};

/* Words of failure anyone may write ("could not be delivered", "returned
 * mail"): they add a little, never enough with a subject alone. */
static const char *const text_failure[] = {
	"your message could not be delivered", "message could not be delivered",
	"was not delivered to", "unable to deliver", "was undeliverable", "mail delivery failed",
	"message delivery failed", "delivery status notification", "address not found",
	"message not delivered", "has not been delivered", "has been delayed",
	"could not deliver", "failed to deliver", "delivery has failed", "sorry, your message to",
	"undeliverable", "non-delivery", "delivery failure", "your email could not be delivered",
	"mail could not be delivered", "returned mail", "the mail server could not deliver",
	"could not be delivered because", "your message was rejected", "message was not accepted",
	"permanent delivery failure", "your message was blocked", "could not be delivered",
	"unzustellbar", "nicht zugestellt", "could not send message", "cannot be delivered",
	"was unable to deliver", "delivery notification",
	NULL
};

static const char *const text_smtp_error[] = {
	"user unknown", "unknown user", "no such user", "mailbox unavailable",
	"mailbox not found", "mailbox is full", "mailbox full", "quota exceeded",
	"over quota", "recipient address rejected", "relay access denied",
	"host unknown", "no mx record", "does not exist", "remote host said",
	"retry timeout exceeded", "smtp error from remote", "said: 550", "said: 554",
	"550 5.", "551 5.", "552 5.", "553 5.", "554 5.", "550-5.", "452 4.",
	"421 4.", "450 4.", "451 4.", "550 #5.", "<<< 550", "<<< 554",
	"invalid recipient", "recipient rejected", "account disabled", "account has been disabled",
	"user not found", "address rejected", "connection timed out", "host not found",
	"name service error", "message size exceeds",
	NULL
};

/* delivery-status fields and SMTP transcripts written into text: what an
 * MTA reports about a delivery attempt (JSON forms: Amazon SES/SNS) */
static const char *const text_dsn_field[] = {
	"final-recipient:", "original-recipient:", "diagnostic-code:", "action: failed",
	"action: delayed", "reporting-mta:", "remote-mta:", "status: 5.", "status: 4.",
	"rcpt to:", "diagnosticcode\"", "diagnosticcode\\\"", "bouncedrecipients\"",
	"bouncedrecipients\\\"",
	NULL
};

/* subjects of feedback reports that are not RFC 5965 (Hotmail's JMRP,
 * hosting providers' abuse desks): counted only with an attached original */
static const char *const subject_feedback[] = {
	"complaint about message from", "abuse report", "feedback report", "spamtraphit",
	"spam complaint", "fbl report",
	NULL
};

static const char *const text_autoreply[] = {
	"out of the office", "out of office", "on vacation", "away from the office",
	"away from my desk", "i am away", "i'm away", "i am currently away", "i am currently out",
	"i'm currently out", "i will be out", "i'll be out", "i am out", "i'm out",
	"limited access to e-mail", "limited access to email", "intermittent access to email",
	"without access to email", "no access to email", "upon my return", "on my return",
	"returning on", "back in the office", "abwesend",
	"nicht im b\xc3\xbc" "ro", "au bureau", "en cong\xc3\xa9", "this is an automatic reply",
	"this is an automated response", "this is an auto-reply", "automatic reply",
	"automatische antwort", "auto-reply", "autoreply",
	NULL
};

static const char *const text_challenge[] = {
	"please confirm you are a human", "confirm that you are a human",
	"verify that you are a human", "prove that you are a human",
	"prove you are a human", "confirm you are a real person", "verify you are a real person",
	"i am using a challenge", "challenge-response", "challenge/response",
	"spam arrest", "spamarrest.com", "boxbe", "tmda", "to confirm your message",
	"to get your message delivered, please",
	"my spam filter requires", "awaiting your confirmation", "is waiting for your confirmation",
	"your message is being held", "has been held pending", "add you to my list of approved senders",
	"approved senders list", "i only accept mail from", "to have your message delivered",
	NULL
};

static const char *const text_original[] = {
	"this is a copy of the message", "below this line is a copy of the message",
	"original message follows", "original message --", "the original message",
	"original message headers", "headers of the original message", "returned message",
	"unsent message below", "message header follows", "text of the message",
	NULL
};

static const char *const *const tables[RULES_COUNT] = {
	[RULES_SUBJECT_BOUNCE] = subject_bounce,
	[RULES_SUBJECT_AUTOREPLY] = subject_autoreply,
	[RULES_SUBJECT_CHALLENGE] = subject_challenge,
	[RULES_SUBJECT_FEEDBACK] = subject_feedback,
	[RULES_SENDER_LOCAL] = sender_local,
	[RULES_SENDER_NAME] = sender_name,
	[RULES_TEXT_BOUNCE] = text_bounce,
	[RULES_TEXT_FAILURE] = text_failure,
	[RULES_TEXT_SMTP_ERROR] = text_smtp_error,
	[RULES_TEXT_DSN_FIELD] = text_dsn_field,
	[RULES_TEXT_AUTOREPLY] = text_autoreply,
	[RULES_TEXT_CHALLENGE] = text_challenge,
	[RULES_TEXT_ORIGINAL] = text_original,
};

const char *bounce_rule_find_near(enum bounce_rule_table t, const char *lowered, size_t within)
{
	if ((unsigned)t >= RULES_COUNT || t == RULES_SENDER_LOCAL)
		return NULL;
	for (const char *const *p = tables[t]; *p; p++) {
		const char *at = strstr(lowered, *p);
		if (at && (size_t)(at - lowered) < within)
			return *p;
	}
	return NULL;
}

const char *bounce_rule_find(enum bounce_rule_table t, const char *lowered)
{
	if ((unsigned)t >= RULES_COUNT)
		return NULL;
	for (const char *const *p = tables[t]; *p; p++) {
		if (t == RULES_SENDER_LOCAL ? strcmp(lowered, *p) == 0 : strstr(lowered, *p) != NULL)
			return *p;
	}
	return NULL;
}

/* The phrase index of bounce_rule_scan: every phrase of every substring
 * table, chained by a hash of its first three bytes. Built once
 * (pthread_once) from the constant tables and never written after: not
 * state. */
#define INDEX_SLOTS 4096
#define INDEX_MAX 1024
static struct {
	short head[INDEX_SLOTS];     /* first entry of a slot, -1: none */
	short next[INDEX_MAX];
	unsigned char table[INDEX_MAX];
	unsigned short len[INDEX_MAX];
	const char *phrase[INDEX_MAX];
	unsigned short_tables;       /* tables with a phrase under three bytes */
	bool overflow;               /* more phrases than INDEX_MAX: no index */
} rule_index;
static pthread_once_t rule_index_once = PTHREAD_ONCE_INIT;

static unsigned trigram_slot(const unsigned char *p)
{
	return ((unsigned)p[0] * 961u + (unsigned)p[1] * 31u + p[2]) & (INDEX_SLOTS - 1);
}

static void rule_index_build(void)
{
	size_t n = 0;

	for (size_t i = 0; i < INDEX_SLOTS; i++)
		rule_index.head[i] = -1;
	for (unsigned t = 0; t < RULES_COUNT; t++) {
		if (t == RULES_SENDER_LOCAL)
			continue;
		for (const char *const *p = tables[t]; *p; p++) {
			size_t len = strlen(*p);
			if (len < 3) {
				rule_index.short_tables |= 1u << t;
				continue;
			}
			if (n == INDEX_MAX || len > 65535) {
				rule_index.overflow = true;
				return;
			}
			unsigned slot = trigram_slot((const unsigned char *)*p);
			rule_index.table[n] = (unsigned char)t;
			rule_index.len[n] = (unsigned short)len;
			rule_index.phrase[n] = *p;
			rule_index.next[n] = rule_index.head[slot];
			rule_index.head[slot] = (short)n;
			n++;
		}
	}
}

unsigned bounce_rule_scan(const char *lowered, unsigned want)
{
	unsigned found = 0, slow;

	want &= ~(1u << RULES_SENDER_LOCAL) & ((1u << RULES_COUNT) - 1);
	pthread_once(&rule_index_once, rule_index_build);
	/* tables the index cannot answer for: one search per table */
	slow = rule_index.overflow ? want : want & rule_index.short_tables;
	for (unsigned t = 0; t < RULES_COUNT; t++)
		if ((slow & (1u << t)) && bounce_rule_find((enum bounce_rule_table)t, lowered))
			found |= 1u << t;
	if (rule_index.overflow)
		return found;
	for (const unsigned char *p = (const unsigned char *)lowered; p[0] && p[1] && p[2] &&
	    (found & want) != want; p++) {
		for (short e = rule_index.head[trigram_slot(p)]; e >= 0; e = rule_index.next[e]) {
			unsigned bit = 1u << rule_index.table[e];
			const unsigned char *ph = (const unsigned char *)rule_index.phrase[e];
			size_t i = 0;
			if (!(want & bit) || (found & bit))
				continue;
			/* the line ends at its NUL: no byte past it is read */
			while (i < rule_index.len[e] && p[i] == ph[i])
				i++;
			if (i == rule_index.len[e])
				found |= bit;
		}
	}
	return found & want;
}
