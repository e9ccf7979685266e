/*
 * bounce_record - see bounce_record.h. Every value but the class and
 * reason comes from the message or the client: escaped in the text form
 * (log_escape_field), JSON-escaped in the other (log_rec).
 */
#include "filters/bounce_record.h"

#include <stdio.h>
#include <string.h>

#include "filters/bounce_evidence.h"
#include "proxy/log.h"
#include "smtp/bounce_fields.h"
#include "smtp/received_ip.h"

#define VALUE_TEXT_MAX 300

/* str - key=<value> in the text (key=- when empty), "key":"value" or null */
static void str(struct log_rec *r, const char *key, const char *value)
{
	char pre[40];

	snprintf(pre, sizeof pre, " %s=", key);
	if (value == NULL || value[0] == '\0') {
		log_rec_text(r, pre);
		log_rec_text(r, "-");
		log_rec_null(r, key);
		return;
	}
	log_rec_str(r, pre, key, value, VALUE_TEXT_MAX, "");
}

void bounce_record_refused(const struct filter_env *env, const struct bounce_result *r,
    const char *rcpt, const char *reason)
{
	char text[LOG_REC_TEXT_MAX], json[LOG_REC_JSON_MAX];
	char sender[256], subject[256];
	const struct bounce_original *o = &r->orig;
	struct log_rec rec;

	log_rec_init(&rec, text, sizeof text, log_json_wanted() ? json : NULL, sizeof json);
	log_rec_text(&rec, "bounce refused:");
	str(&rec, "server_ip", env->client_ip);
	str(&rec, "server_name", env->client_name);
	str(&rec, "helo", env->helo);
	str(&rec, "rcpt", rcpt);
	/* the bounce's envelope sender: "" is the null sender */
	log_rec_str(&rec, " sender=<", "sender", env->mail_from ? env->mail_from : "", VALUE_TEXT_MAX,
	    ">");
	log_rec_str(&rec, " class=", "class", bounce_class_name(r->cls), LOG_REC_VERBATIM, "");
	log_rec_str(&rec, " reason=", "reason", reason, LOG_REC_VERBATIM, "");
	bounce_addr_bare(o->return_path, sender, sizeof sender);
	if (sender[0] == '\0')
		bounce_addr_bare(o->from, sender, sizeof sender);
	str(&rec, "orig_sender", sender);
	str(&rec, "orig_client_ip", received_entry_ip(o));
	bounce_rfc2047_decode(o->subject, subject, sizeof subject);
	str(&rec, "message_id", o->message_id);
	/* the URL hosts before the subject: the subject is the longest value
	 * and the last to be cut from the text line */
	log_rec_text(&rec, " url_hosts=");
	if (o->urls.n == 0)
		log_rec_text(&rec, "-");
	log_rec_array_begin(&rec, "url_hosts");
	for (size_t i = 0; i < o->urls.n; i++)
		log_rec_str(&rec, i ? "," : "", NULL, o->urls.host[i], URL_HOST_MAX, "");
	log_rec_end(&rec);
	str(&rec, "subject", subject);
	log_record(LOG_LEVEL_INFO, "bounce_refused", env->sid, &rec);
}
