/*
 * test_bounce - the bounce classifier: one case per class and per MTA
 * form, the ordinary messages that look like bounces, the original's
 * fields, and the same verdict whatever the chunk split. Messages are
 * written with LF and fed as CRLF (tests/unit/bounce_feed.h).
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <malloc.h>
#include <time.h>

#include "tests/unit/bounce_feed.h"
#include "tests/unit/check.h"

/* classify - msg fed whole, then byte by byte and in chunks of 13: the
 * result must be the same each time. */
static struct bounce_result classify(const char *msg, const char *mail_from)
{
	struct bounce_result r[3];
	size_t chunks[3] = { 0, 1, 13 }, n;
	char *crlf = to_crlf(msg, strlen(msg), &n);
	for (int i = 0; i < 3; i++) {
		struct bounce_scan *s = bounce_scan_new();
		feed_message(s, crlf, n, chunks[i], NULL, 0, NULL);
		bounce_scan_end(s, mail_from, &r[i]);
		bounce_scan_free(s);
	}
	for (int i = 1; i < 3; i++)
		CHECK(memcmp(&r[0], &r[i], sizeof r[0]) == 0);
	free(crlf);
	return r[0];
}

#define IS(r, c) do { if ((r).cls != (c)) fprintf(stderr, "why: %s\n", (r).why); \
	CHECK_STR(bounce_class_name((r).cls), bounce_class_name(c)); } while (0)

static const char postfix_dsn[] =
    "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
    "To: alice@example.org\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "Auto-Submitted: auto-replied\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"4A1B2C.1733\"\n"
    "\n"
    "This is a MIME-encapsulated message.\n"
    "\n"
    "--4A1B2C.1733\n"
    "Content-Description: Notification\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "This is the mail system at host mx.example.net.\n"
    "\n"
    "--4A1B2C.1733\n"
    "Content-Description: Delivery report\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.example.net\n"
    "X-Postfix-Queue-ID: 4A1B2C\n"
    "X-Postfix-Sender: rfc822; alice@example.org\n"
    "\n"
    "Final-Recipient: rfc822; bob@example.net\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "\n"
    "--4A1B2C.1733\n"
    "Content-Description: Undelivered Message Headers\n"
    "Content-Type: text/rfc822-headers\n"
    "\n"
    "Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4A1B2C\n"
    "\tfor <bob@example.net>; Mon,  2 Dec 2024 10:00:00 +0000 (UTC)\n"
    "Received: from [IPv6:2001:db8::5] (unknown [IPv6:2001:db8::5])\n"
    "\tby mail.example.org (Postfix) with ESMTPSA id 11AA; Mon,  2 Dec 2024 09:59:59 +0000\n"
    "From: Alice <alice@example.org>\n"
    "Subject: lunch\n"
    "Date: Mon, 2 Dec 2024 09:59:58 +0000\n"
    "Message-ID: <lunch.1@example.org>\n"
    "X-Backstop-Sig: v=1; k=3; t=20060;\n"
    "\ts=AAAABBBBCCCCDDDD\n"
    "\n"
    "--4A1B2C.1733--\n";

static void test_dsn(void)
{
	struct bounce_result r = classify(postfix_dsn, "");
	IS(r, BOUNCE_DSN);
	CHECK(strstr(r.why, "delivery-status") != NULL);
	CHECK(r.orig.found);
	CHECK(!r.orig.quoted_headers);
	CHECK_STR(r.orig.message_id, "<lunch.1@example.org>");
	CHECK_STR(r.orig.from, "alice@example.org");
	CHECK_STR(r.orig.subject, "lunch");
	CHECK_STR(r.orig.date, "Mon, 2 Dec 2024 09:59:58 +0000");
	CHECK_STR(r.orig.return_path, "alice@example.org");   /* X-Postfix-Sender */
	CHECK_STR(r.orig.backstop_sig, "v=1; k=3; t=20060;\ts=AAAABBBBCCCCDDDD");
	CHECK_INT(r.orig.nhops, 2);
	CHECK_STR(r.orig.hops[0].from, "mail.example.org");
	CHECK_STR(r.orig.hops[0].by, "mx.example.net");
	CHECK_STR(r.orig.hops[0].ip, "192.0.2.10");
	CHECK_STR(r.orig.hops[1].ip, "2001:db8::5");
	CHECK_STR(r.orig.hops[1].by, "mail.example.org");
	/* the same with a non-null envelope sender: the structure decides */
	r = classify(postfix_dsn, "bounces@example.net");
	IS(r, BOUNCE_DSN);
}

static void test_ndr_forms(void)
{
	/* qmail: no MIME, the original quoted after the marker */
	struct bounce_result r = classify(
	    "From: MAILER-DAEMON@mx.example.net\n"
	    "To: alice@example.org\n"
	    "Subject: failure notice\n"
	    "\n"
	    "Hi. This is the qmail-send program at mx.example.net.\n"
	    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
	    "\n"
	    "<bob@example.net>:\n"
	    "Sorry, no mailbox here by that name. (#5.1.1)\n"
	    "\n"
	    "--- Below this line is a copy of the message.\n"
	    "\n"
	    "Return-Path: <alice@example.org>\n"
	    "Received: (qmail 1234 invoked from network); 2 Dec 2024 10:00:00 -0000\n"
	    "Received: from mail.example.org (HELO mail.example.org) ([192.0.2.10])\n"
	    "          by mx.example.net with SMTP; 2 Dec 2024 10:00:00 -0000\n"
	    "Message-ID: <q.1@example.org>\n"
	    "From: alice@example.org\n"
	    "Subject: qmail test\n"
	    "X-Backstop-Sig: v=1; k=1; t=20000; s=QQQQ\n"
	    "\n"
	    "body of the original\n", "");
	IS(r, BOUNCE_NDR);
	CHECK(r.orig.found && r.orig.quoted_headers);
	CHECK_STR(r.orig.return_path, "alice@example.org");
	CHECK_STR(r.orig.message_id, "<q.1@example.org>");
	CHECK_STR(r.orig.subject, "qmail test");
	CHECK_STR(r.orig.backstop_sig, "v=1; k=1; t=20000; s=QQQQ");
	CHECK_INT(r.orig.nhops, 2);
	CHECK_STR(r.orig.hops[1].from, "mail.example.org");
	CHECK_STR(r.orig.hops[1].ip, "192.0.2.10");
	CHECK_STR(r.orig.hops[1].by, "mx.example.net");

	/* Exim: non-null sender (a relay rewrote it), X-Failed-Recipients, the
	 * copy indented after its marker */
	r = classify(
	    "From: Mail Delivery System <Mailer-Daemon@relay.example.net>\n"
	    "To: alice@example.org\n"
	    "Subject: Mail delivery failed: returning message to sender\n"
	    "X-Failed-Recipients: bob@example.net\n"
	    "Auto-Submitted: auto-replied\n"
	    "\n"
	    "This message was created automatically by mail delivery software.\n"
	    "\n"
	    "A message that you sent could not be delivered to one or more of its\n"
	    "recipients. This is a permanent error. The following address(es) failed:\n"
	    "\n"
	    "  bob@example.net\n"
	    "    SMTP error from remote mail server after RCPT TO:<bob@example.net>:\n"
	    "    550 5.1.1 User unknown\n"
	    "\n"
	    "------ This is a copy of the message, including all the headers. ------\n"
	    "\n"
	    "  Return-path: <alice@example.org>\n"
	    "  Message-ID: <exim.1@example.org>\n"
	    "  Subject: folded\n"
	    "   subject line\n"
	    "  From: Alice <alice@example.org>\n"
	    "\n"
	    "  hello\n", "mailer-daemon@relay.example.net");
	IS(r, BOUNCE_NDR);
	CHECK(strstr(r.why, "X-Failed-Recipients") != NULL);
	CHECK_STR(r.orig.message_id, "<exim.1@example.org>");
	CHECK_STR(r.orig.subject, "folded   subject line");
	CHECK_STR(r.orig.from, "alice@example.org");

	/* Exchange-like: "Undeliverable:" from postmaster, RFC 2047 subject */
	r = classify(
	    "From: postmaster@corp.example.com\n"
	    "To: alice@example.org\n"
	    "Subject: =?utf-8?B?VW5kZWxpdmVyYWJsZTogbHVuY2g=?=\n"
	    "Content-Type: multipart/mixed; boundary=x\n"
	    "\n"
	    "--x\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "Delivery has failed to these recipients or groups:\n"
	    "bob@corp.example.com\n"
	    "--x\n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "From: Alice <alice@example.org>\n"
	    "Message-ID: <ex.1@example.org>\n"
	    "Subject: lunch\n"
	    "\n"
	    "hi\n"
	    "--x--\n", "someone@corp.example.com");
	IS(r, BOUNCE_NDR);
	CHECK(strstr(r.why, "Undeliverable: lunch") != NULL);
	CHECK_STR(r.orig.message_id, "<ex.1@example.org>");
	CHECK(!r.orig.quoted_headers);
}

static void test_original_in_odd_places(void)
{
	/* the copy as the header section of a part (no blank line after the
	 * boundary, no message/rfc822): Mail2000-style */
	struct bounce_result r = classify(
	    "From: MAILER-DAEMON@mx.example.net\n"
	    "Subject: Returned Mail: User unknown\n"
	    "Content-Type: multipart/mixed; boundary=b\n"
	    "\n"
	    "--b\n\nThe original message was received at Mon, 2 Dec 2024\n"
	    "--b\n"
	    "Received: from a.example ([192.0.2.7]) by mx.example.net\n"
	    "Message-Id: <part@example.org>\n"
	    "From: alice@example.org\n"
	    "\n"
	    "body\n"
	    "--b--\n", "");
	IS(r, BOUNCE_NDR);
	CHECK(r.orig.found && r.orig.quoted_headers);
	CHECK_STR(r.orig.message_id, "<part@example.org>");
	CHECK_STR(r.orig.hops[0].ip, "192.0.2.7");

	/* the original's fields appended to the status fields */
	r = classify(
	    "From: MAILER-DAEMON@mx.example.net\n"
	    "Subject: Returned mail\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n"
	    "\n"
	    "--b\nContent-Type: message/delivery-status\n\n"
	    "Final-Recipient: RFC822; bob@example.net\nStatus: 5.5.0\n\n"
	    "Return-Path: <alice@example.org>\n"
	    "Message-Id: <ds@example.org>\n"
	    "Subject: in the status part\n"
	    "--b--\n", "");
	IS(r, BOUNCE_DSN);
	CHECK_STR(r.orig.message_id, "<ds@example.org>");
	CHECK_STR(r.orig.return_path, "alice@example.org");
	CHECK_STR(r.orig.subject, "in the status part");
	/* a part's own Content-* fields are no original */
	r = classify("From: a@example.com\nSubject: x\nContent-Type: multipart/mixed; boundary=c\n\n"
	    "--c\nContent-Type: text/plain\nContent-Disposition: inline\n\nhi\n--c--\n", "a@example.com");
	IS(r, BOUNCE_ORDINARY);
	CHECK(!r.orig.found);
}

static void test_reports(void)
{
	struct bounce_result r = classify(
	    "From: bob@example.net\n"
	    "Subject: Read: lunch\n"
	    "Content-Type: multipart/report; report-type=disposition-notification; boundary=m\n"
	    "\n"
	    "--m\n\nYour message was read.\n"
	    "--m\nContent-Type: message/disposition-notification\n\n"
	    "Final-Recipient: rfc822; bob@example.net\n"
	    "Original-Message-ID: <lunch.1@example.org>\n"
	    "Disposition: manual-action/MDN-sent-manually; displayed\n"
	    "--m--\n", "bob@example.net");
	IS(r, BOUNCE_MDN);
	CHECK_STR(r.orig.message_id, "<lunch.1@example.org>");
	CHECK(r.well_formed);

	r = classify(
	    "From: feedback@fbl.example\n"
	    "Subject: FW: lunch\n"
	    "Content-Type: multipart/report; report-type=feedback-report; boundary=f\n"
	    "\n"
	    "--f\n\nThis is an email abuse report.\n"
	    "--f\nContent-Type: message/feedback-report\n\n"
	    "Feedback-Type: abuse\nUser-Agent: fbl/1.0\nVersion: 1\n"
	    "Original-Mail-From: <alice@example.org>\n"
	    "--f\nContent-Type: message/rfc822\n\n"
	    "From: alice@example.org\nMessage-ID: <arf.1@example.org>\n\nspam?\n"
	    "--f--\n", "fbl@fbl.example");
	IS(r, BOUNCE_ARF);
	CHECK_STR(r.orig.message_id, "<arf.1@example.org>");
	CHECK_STR(r.orig.return_path, "alice@example.org");
	CHECK(r.well_formed);
	/* DSNs and ordinary mail are never "well formed" reports */
	CHECK(!classify(postfix_dsn, "").well_formed);
}

/* A well-formed RFC 8098 read receipt, with a %s before the report part and
 * a %s in it: the forms of test_report_well_formed. */
static const char mdn_template[] =
    "From: bob@example.net\n"
    "Subject: Read: lunch\n"
    "Content-Type: multipart/report; report-type=%s; boundary=m\n"
    "\n"
    "--m\nContent-Type: %s\n\nYour message was read.\n"
    "%s"
    "--m\nContent-Type: message/disposition-notification\n\n"
    "Reporting-UA: mua.example.net\n"
    "%s"
    "--m--\n";
#define MDN_FIELDS "Final-Recipient: rfc822; bob@example.net\n" \
    "Original-Message-ID: <lunch.1@example.org>\n" \
    "Disposition: manual-action/MDN-sent-manually; displayed\n"

static struct bounce_result mdn_form(const char *report_type, const char *text_type,
    const char *before, const char *fields)
{
	char msg[4096];
	snprintf(msg, sizeof msg, mdn_template, report_type, text_type, before, fields);
	return classify(msg, "");
}

/* ARF (RFC 5965) with the feedback fields given and an attached original */
static struct bounce_result arf_form(const char *fields, const char *original_type)
{
	char msg[4096];
	snprintf(msg, sizeof msg,
	    "From: feedback@fbl.example\nSubject: FW: lunch\n"
	    "Content-Type: multipart/report; report-type=feedback-report; boundary=f\n\n"
	    "--f\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
	    "--f\nContent-Type: message/feedback-report\n\n%s"
	    "--f\nContent-Type: %s\n\n"
	    "From: alice@example.org\nMessage-ID: <arf.1@example.org>\n\nspam?\n"
	    "--f--\n", fields, original_type);
	return classify(msg, "");
}

/* test_report_well_formed - what [batv] refuse_at = content waives BATV
 * for: only a complete MDN or ARF. Issue 11 review (H2): a forger labelled
 * spam and a forged DSN as reports. */
static void test_report_well_formed(void)
{
	struct bounce_result r = mdn_form("disposition-notification", "text/plain", "", MDN_FIELDS);
	IS(r, BOUNCE_MDN);
	CHECK(r.well_formed);
	/* nothing may ride along: an HTML body, a program (rereview of issue 11) */
	r = mdn_form("disposition-notification", "text/html", "", MDN_FIELDS);
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	r = mdn_form("disposition-notification", "text/plain",
	    "--m\nContent-Type: application/x-msdownload; name=invoice.exe\n\nTVqQAAMAAAAEAAAA\n",
	    MDN_FIELDS);
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	CHECK(strstr(r.why, "a part besides the text, the report and the original") != NULL);
	/* each required field missing, or without a value */
	r = mdn_form("disposition-notification", "text/plain", "",
	    "Original-Message-ID: <lunch.1@example.org>\nDisposition: manual-action/MDN-sent-manually; "
	    "displayed\n");
	IS(r, BOUNCE_MDN);
	CHECK(!r.well_formed);
	CHECK(strstr(r.why, "not well formed: no Final-Recipient") != NULL);
	r = mdn_form("disposition-notification", "text/plain", "",
	    "Final-Recipient: rfc822; bob@example.net\nOriginal-Message-ID: <lunch.1@example.org>\n");
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	r = mdn_form("disposition-notification", "text/plain", "",
	    "Final-Recipient: rfc822; bob@example.net\nDisposition: automatic-action/MDN-sent-"
	    "automatically; deleted\n");
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	r = mdn_form("disposition-notification", "text/plain", "",
	    "Final-Recipient: rfc822; bob@example.net\nOriginal-Message-ID: <lunch.1@example.org>\n"
	    "Disposition:   \n");
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	/* two report parts; no human-readable part; another report-type */
	r = mdn_form("disposition-notification", "text/plain",
	    "--m\nContent-Type: message/disposition-notification\n\n" MDN_FIELDS, MDN_FIELDS);
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	r = mdn_form("disposition-notification", "image/png", "", MDN_FIELDS);
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	r = mdn_form("unknown-report", "text/plain", "", MDN_FIELDS);
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);
	r = mdn_form("global-disposition-notification", "text/plain", "", MDN_FIELDS);   /* RFC 6533 */
	CHECK(r.cls == BOUNCE_MDN && r.well_formed);
	/* the report part outside the multipart/report */
	r = classify(
	    "From: x@example.net\nContent-Type: multipart/mixed; boundary=o\n\n"
	    "--o\nContent-Type: multipart/report; report-type=disposition-notification; boundary=m\n\n"
	    "--m\nContent-Type: text/plain\n\nread\n--m--\n"
	    "--o\nContent-Type: message/disposition-notification\n\n" MDN_FIELDS "--o--\n", "");
	CHECK(r.cls == BOUNCE_MDN && !r.well_formed);

	/* a report-type label alone (spam in a multipart/report) */
	r = classify(
	    "From: <promo@spammer.example>\nSubject: Cheap watches\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n"
	    "--b\nContent-Type: text/html\n\n<a href=x>BUY</a>\n--b--\n", "");
	IS(r, BOUNCE_MDN);
	CHECK(!r.well_formed);
	CHECK(strstr(r.why, "no disposition-notification part") != NULL);

	/* a forged DSN with one message/disposition-notification part more,
	 * or relabelled report-type=disposition-notification: still a DSN */
	char forged[8192];
	const char *end = strstr(postfix_dsn, "--4A1B2C.1733--");
	snprintf(forged, sizeof forged, "%.*s--4A1B2C.1733\nContent-Type: message/disposition-"
	    "notification\n\n" MDN_FIELDS "\n%s", (int)(end - postfix_dsn), postfix_dsn, end);
	r = classify(forged, "");
	IS(r, BOUNCE_DSN);
	CHECK(!r.well_formed);
	char *rt = strstr(forged, "report-type=delivery-status");
	CHECK(rt != NULL);
	if (rt) {
		char relabelled[8192];
		snprintf(relabelled, sizeof relabelled, "%.*sreport-type=disposition-notification%s",
		    (int)(rt - forged), forged, rt + strlen("report-type=delivery-status"));
		r = classify(relabelled, "");
		IS(r, BOUNCE_DSN);
		CHECK_STR(r.why, "message/delivery-status part in multipart/report "
		    "disposition-notification");
	}
	/* report-type=delivery-status decides without its part */
	r = mdn_form("delivery-status", "text/plain", "", MDN_FIELDS);
	IS(r, BOUNCE_DSN);

	/* ARF: every required field and the original */
	r = arf_form("Feedback-Type: abuse\nUser-Agent: fbl/1.0\nVersion: 1\n", "message/rfc822");
	IS(r, BOUNCE_ARF);
	CHECK(r.well_formed);
	r = arf_form("Feedback-Type: abuse\nUser-Agent: fbl/1.0\nVersion: 1\n", "text/rfc822-headers");
	CHECK(r.cls == BOUNCE_ARF && r.well_formed);
	r = arf_form("Feedback-Type: abuse\nUser-Agent: fbl/1.0\nVersion: 1\n", "text/rfc822-header");
	CHECK(r.cls == BOUNCE_ARF && r.well_formed);   /* sic: seen in the wild (sisimai arf-12) */
	r = arf_form("User-Agent: fbl/1.0\nVersion: 1\n", "message/rfc822");
	CHECK(r.cls == BOUNCE_ARF && !r.well_formed);
	r = arf_form("Feedback-Type: abuse\nVersion: 1\n", "message/rfc822");
	CHECK(r.cls == BOUNCE_ARF && !r.well_formed);
	r = arf_form("Feedback-Type: abuse\nUser-Agent: fbl/1.0\n", "message/rfc822");
	CHECK(r.cls == BOUNCE_ARF && !r.well_formed);
	r = arf_form("Feedback-Type: abuse\nUser-Agent: fbl/1.0\nVersion: 1\n", "text/plain");
	CHECK(r.cls == BOUNCE_ARF && !r.well_formed);
	CHECK(strstr(r.why, "no original attached") != NULL);
	/* the header heuristics classify, never well formed */
	r = classify("From: <promo@spammer.example>\nSubject: Cheap watches\n"
	    "X-Apple-Unsubscribe: true\n\nBUY NOW\n", "");
	IS(r, BOUNCE_ARF);
	CHECK(!r.well_formed);
	r = classify("From: staff@hotmail.example\nSubject: complaint about message from 192.0.2.1\n"
	    "Content-Type: multipart/mixed; boundary=j\n\n--j\n\ncomplaint\n"
	    "--j\nContent-Type: message/rfc822\n\nFrom: a@example.org\nMessage-ID: <j@x>\n\nx\n"
	    "--j--\n", "");
	IS(r, BOUNCE_ARF);
	CHECK(!r.well_formed);
}

/* A mailing-list reply that pastes a Postfix bounce, not '>'-quoted
 * (issue 11 review, H3): a person's post, not an NDR. */
static const char list_paste[] =
    "From: Alice Admin <alice@remote.example>\n"
    "To: postfix-users@lists.example\n"
    "Subject: Re: Why does my server reject this?\n"
    "In-Reply-To: <q0@remote.example>\n"
    "%s"
    "Precedence: list\n"
    "Message-ID: <q1@remote.example>\n"
    "\n"
    "Here is the bounce my users get back, what does it mean?\n"
    "\n"
    "This is the mail system at host mail.remote.example.\n"
    "\n"
    "I'm sorry to have to inform you that your message could not\n"
    "be delivered to one or more recipients. It's attached below.\n"
    "\n"
    "<victim@remote.example>: host mx.remote.example[198.51.100.20] said: 550 5.1.1\n"
    "    <victim@remote.example>: Recipient address rejected: User unknown\n"
    "\n"
    "Final-Recipient: rfc822; victim@remote.example\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "\n"
    "Thanks, Alice\n";

static void test_list_post_pasting_a_bounce(void)
{
	char msg[4096];
	static const char *const list_fields[] = {
		"List-Id: <postfix-users.lists.example>\n",
		"List-Post: <mailto:postfix-users@lists.example>\n",
		"List-Unsubscribe: <mailto:postfix-users-leave@lists.example>\n",
	};
	struct bounce_result r;

	for (size_t i = 0; i < sizeof list_fields / sizeof list_fields[0]; i++) {
		snprintf(msg, sizeof msg, list_paste, list_fields[i]);
		r = classify(msg, "postfix-users-bounces@lists.example");
		IS(r, BOUNCE_ORDINARY);
		r = classify(msg, NULL);   /* envelope unknown: not null */
		IS(r, BOUNCE_ORDINARY);
	}
	/* the veto is a person's: the null sender, a daemon envelope sender
	 * or From: keeps the NDR */
	snprintf(msg, sizeof msg, list_paste, list_fields[0]);
	r = classify(msg, "");
	IS(r, BOUNCE_NDR);
	r = classify(msg, "MAILER-DAEMON@lists.example");
	IS(r, BOUNCE_NDR);
	char daemon[4096];
	snprintf(daemon, sizeof daemon, "From: Mail Delivery System <MAILER-DAEMON@remote.example>%s",
	    strchr(msg, '\n'));
	r = classify(daemon, "postfix-users-bounces@lists.example");
	IS(r, BOUNCE_NDR);
	/* without the list fields it stays an NDR (what the veto is about) */
	snprintf(msg, sizeof msg, list_paste, "");
	r = classify(msg, "alice@remote.example");
	IS(r, BOUNCE_NDR);
}

static void test_autoreply_and_challenge(void)
{
	struct bounce_result r = classify(
	    "From: Carol <carol@example.com>\n"
	    "Subject: Automatic reply: lunch\n"
	    "Auto-Submitted: auto-replied\n"
	    "In-Reply-To: <lunch.1@example.org>\n"
	    "\n"
	    "I am out of the office until Monday.\n", "");
	IS(r, BOUNCE_AUTOREPLY);
	CHECK_STR(r.in_reply_to, "<lunch.1@example.org>");

	/* Exchange's out-of-office: no Auto-Submitted, X-Auto-Response-Suppress */
	r = classify(
	    "From: Carol <carol@example.com>\n"
	    "Subject: Automatic reply: lunch\n"
	    "X-Auto-Response-Suppress: All\n"
	    "\n"
	    "I'm out of the office Friday.\n", "carol@example.com");
	IS(r, BOUNCE_AUTOREPLY);

	r = classify("From: d@example.com\nSubject: hi\nX-Autoreply: yes\n\nvacation\n", "d@example.com");
	IS(r, BOUNCE_AUTOREPLY);
	r = classify("From: d@example.com\nSubject: Abwesenheitsnotiz: hi\nPrecedence: auto_reply\n\nweg\n",
	    "d@example.com");
	IS(r, BOUNCE_AUTOREPLY);
	/* German subject with the null sender */
	r = classify("From: d@example.de\nSubject: Abwesenheit\n\nBin nicht da.\n", "");
	IS(r, BOUNCE_AUTOREPLY);
	/* a person's subject alone */
	r = classify("From: d@example.com\nSubject: Out of Office plans\n\nI will be out of the office.\n",
	    "d@example.com");
	IS(r, BOUNCE_ORDINARY);
	/* a vacation reply without Auto-Submitted or any other marker, from a
	 * non-null sender: its subject and In-Reply-To (or References) make it
	 * one (issue 11 review, M2) */
	r = classify("From: Victim <victim@remote.example>\nSubject: Out of office: Cheap watches\n"
	    "In-Reply-To: <spam.9@spammer.example>\n\nI am out of the office until Monday.\n",
	    "victim@remote.example");
	IS(r, BOUNCE_AUTOREPLY);
	CHECK_STR(r.in_reply_to, "<spam.9@spammer.example>");
	r = classify("From: v@remote.example\nSubject: Automatic reply: x\n"
	    "References: <spam.9@spammer.example>\n\nback soon\n", "v@remote.example");
	IS(r, BOUNCE_AUTOREPLY);
	/* nor a person's new message in a thread whose subject mentions it
	 * (rereview of issue 11) */
	r = classify("From: alice@partner.example\nSubject: Out of office coverage next week\n"
	    "In-Reply-To: <thread.1@partner.example>\n\nCan you cover the desk on Monday?\n",
	    "alice@partner.example");
	IS(r, BOUNCE_ORDINARY);
	/* but not a person answering ("Re:"), nor a list */
	r = classify("From: v@remote.example\nSubject: Re: Out of office: x\n"
	    "In-Reply-To: <a@x>\n\nwelcome back\n", "v@remote.example");
	IS(r, BOUNCE_ORDINARY);
	r = classify("From: v@remote.example\nSubject: Out of office etiquette\n"
	    "In-Reply-To: <a@x>\nList-Id: <office.lists.example>\n\nmy view\n", "v@remote.example");
	IS(r, BOUNCE_ORDINARY);
	/* auto-generated alone is a notification */
	r = classify("From: root@example.com\nSubject: cron\nAuto-Submitted: auto-generated\n\nok\n",
	    "root@example.com");
	IS(r, BOUNCE_ORDINARY);

	r = classify(
	    "From: TMDA <bob-confirm-123@example.net>\n"
	    "Subject: Please confirm your message\n"
	    "Auto-Submitted: auto-replied\n"
	    "X-Delivery-Agent: TMDA/1.1.12\n"
	    "\n"
	    "This message was created automatically by mail delivery software (TMDA).\n"
	    "Your message is being held: please confirm you are a human by replying.\n", "");
	IS(r, BOUNCE_CHALLENGE);
	r = classify("From: x@example.net\nSubject: hold\nX-Challenge: 123\n\nconfirm\n", "x@example.net");
	IS(r, BOUNCE_CHALLENGE);
}

static void test_ordinary_lookalikes(void)
{
	/* "Undelivered Mail" in a person's subject: subject alone is 3 */
	struct bounce_result r = classify(
	    "From: Frank <frank@example.com>\n"
	    "Subject: Undelivered Mail Returned to Sender - help\n"
	    "\n"
	    "I keep getting these, it says user unknown.\n", "frank@example.com");
	IS(r, BOUNCE_ORDINARY);
	/* replying to a bounce: a person's message */
	r = classify(
	    "From: Frank <frank@example.com>\n"
	    "Subject: Re: Undelivered Mail Returned to Sender\n"
	    "\n"
	    "> This is the mail system at host mx.example.net.\n"
	    "> I'm sorry to have to inform you that your message could not\n"
	    "Why?\n", "frank@example.com");
	IS(r, BOUNCE_ORDINARY);
	/* a bounce forwarded as an attachment is inside message/rfc822 */
	char fwd[8192];
	snprintf(fwd, sizeof fwd,
	    "From: Erin <erin@example.org>\nSubject: Fwd: Undelivered Mail Returned to Sender\n"
	    "Content-Type: multipart/mixed; boundary=outer\n\n"
	    "--outer\n\nsee below\n--outer\nContent-Type: message/rfc822\n\n%s\n--outer--\n",
	    postfix_dsn);
	r = classify(fwd, "erin@example.org");
	IS(r, BOUNCE_ORDINARY);
	/* but a daemon that only says so in the subject is a bounce */
	r = classify("From: MAILER-DAEMON@example.net\nSubject: Undelivered Mail Returned to Sender\n\n"
	    "x\n", "");
	IS(r, BOUNCE_NDR);
}

static void test_references_and_names(void)
{
	struct bounce_result r = classify(
	    "From: a@example.com\nSubject: Re: x\n"
	    "In-Reply-To: Joe's message <p9@example.com> <p10@example.com>\n"
	    "References: <r1@x> <r2@x> <r3@x>\n <r4@x> <r5@x> <r6@x> <r7@x> <r8@x> <r9@x> <r10@x>\n"
	    "\nhello\n", "a@example.com");
	IS(r, BOUNCE_ORDINARY);
	CHECK_STR(r.in_reply_to, "<p9@example.com>");
	CHECK_INT(r.nrefs, 8);
	CHECK_STR(r.refs[0], "<r3@x>");
	CHECK_STR(r.refs[7], "<r10@x>");

	for (unsigned c = 0; c < BOUNCE_CLASS_COUNT; c++) {
		enum bounce_class back;
		CHECK(bounce_class_parse(bounce_class_name((enum bounce_class)c), &back));
		CHECK_INT(back, c);
	}
	enum bounce_class x;
	CHECK(bounce_class_parse("NDR", &x) && x == BOUNCE_NDR);
	CHECK(!bounce_class_parse("bounce", &x));
	CHECK(!bounce_class_parse("", &x));
	CHECK(!bounce_class_parse("ndrx", &x));
}

static void test_hostile(void)
{
	/* nothing at all */
	struct bounce_scan *s = bounce_scan_new();
	struct bounce_result r;
	bounce_scan_end(s, "", &r);
	IS(r, BOUNCE_ORDINARY);
	bounce_scan_free(s);

	/* huge fields, NUL, junk: bounded and no crash */
	size_t big = 200000;
	char *field = malloc(big);
	memcpy(field, "Subject: ", 9);
	memset(field + 9, 'u', big - 9);
	char *body = malloc(big);
	for (size_t i = 0; i < big; i++)
		body[i] = (char)(i * 131 % 251);
	s = bounce_scan_new();
	bounce_scan_header(s, field, big);
	bounce_scan_header(s, "From", 4);
	bounce_scan_header(s, ":", 1);
	bounce_scan_header(s, "Received: from [", 16);
	bounce_scan_header(s, "Message-ID: <", 13);
	bounce_scan_header(s, "References: <<<<>>>>", 20);
	bounce_scan_eoh(s);
	bounce_scan_body(s, body, big);
	bounce_scan_end(s, NULL, &r);
	bounce_scan_free(s);
	CHECK(r.nrefs <= 8);
	free(field);
	free(body);

	/* an original with 100 Received fields: 16 kept, the top 8 and the
	 * bottom 8, in order (the bottom one is where it came from) */
	char msg[16384];
	size_t n = (size_t)snprintf(msg, sizeof msg,
	    "From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail Returned to Sender\n"
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
	    "--b\nContent-Type: message/rfc822\n\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(msg + n, sizeof msg - n,
		    "Received: from h%d.example ([192.0.2.%d]) by h%d.example\n", i, i, i + 1);
	snprintf(msg + n, sizeof msg - n, "\nx\n--b--\n");
	r = classify(msg, "");
	IS(r, BOUNCE_DSN);
	CHECK_INT(r.orig.nhops, BOUNCE_RECEIVED_MAX);
	CHECK_INT(r.orig.hops_seen, 100);
	for (int i = 0; i < BOUNCE_RECEIVED_MAX; i++) {
		char want[32];
		int hop = i < BOUNCE_RECEIVED_TOP ? i : 100 - BOUNCE_RECEIVED_MAX + i;
		snprintf(want, sizeof want, "192.0.2.%d", hop);
		CHECK_STR(bounce_hop_at(&r.orig, (size_t)i)->ip, want);
	}
	/* 16 and 17 fields: the ring's edges */
	for (int total = 16; total <= 17; total++) {
		n = (size_t)snprintf(msg, sizeof msg,
		    "From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail Returned to Sender\n"
		    "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
		    "--b\nContent-Type: message/rfc822\n\n");
		for (int i = 0; i < total; i++)
			n += (size_t)snprintf(msg + n, sizeof msg - n,
			    "Received: from h%d.example ([192.0.2.%d]) by h%d.example\n", i, i, i + 1);
		snprintf(msg + n, sizeof msg - n, "\nx\n--b--\n");
		r = classify(msg, "");
		char want[32];
		snprintf(want, sizeof want, "192.0.2.%d", total - 1);
		CHECK_STR(bounce_hop_at(&r.orig, BOUNCE_RECEIVED_MAX - 1)->ip, want);
		snprintf(want, sizeof want, "192.0.2.%d", total - 8);
		CHECK_STR(bounce_hop_at(&r.orig, BOUNCE_RECEIVED_TOP)->ip, want);
		CHECK_STR(bounce_hop_at(&r.orig, BOUNCE_RECEIVED_TOP - 1)->ip, "192.0.2.7");
	}
}

/* allocated - bytes in use on the heap (0 under ASan, whose allocator
 * glibc's mallinfo2 does not see) */
static size_t allocated(void)
{
	return mallinfo2().uordblks;
}

static void test_bounded_and_fast(void)
{
	/* 20 MB: a text part and a base64 attachment, and a hostile tail of
	 * 100k parts; the classifier's memory does not grow while it reads */
	size_t target = 20u << 20, n = 0;
	char *msg = malloc(target + 4096);
	const char head[] =
	    "From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Content-Type: multipart/mixed; boundary=\"=_big\"\r\n\r\n"
	    "--=_big\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host x.\r\n"
	    "--=_big\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n";
	memcpy(msg, head, sizeof head - 1);
	n = sizeof head - 1;
	while (n + 80 < target - (2u << 20)) {
		for (int i = 0; i < 76; i++)
			msg[n + (size_t)i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(n + (size_t)i) % 64];
		memcpy(msg + n + 76, "\r\n", 2);
		n += 78;
	}
	while (n + 40 < target)
		n += (size_t)snprintf(msg + n, 40, "--=_big\r\n\r\ntext %zu\r\n", n);
	n += (size_t)snprintf(msg + n, 40, "--=_big--\r\n");

	size_t before = allocated();
	struct bounce_scan *s = bounce_scan_new();
	size_t after_new = allocated();
	struct timespec t0, t1;
	struct bounce_result r;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	feed_message(s, msg, n, 65536, NULL, 0, NULL);
	size_t after_feed = allocated();
	bounce_scan_end(s, "", &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	bounce_scan_free(s);
	double us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	printf("20 MB bounce (base64 attachment + 27k parts): %.0f us, %.0f us/MB; "
	    "memory per scan %zu bytes\n", us, us / ((double)n / (1 << 20)), after_new - before);
	IS(r, BOUNCE_NDR);
	CHECK(us < 10e6);
	if (after_new > before) {
		CHECK(after_new - before < 64 * 1024);
		CHECK_INT(after_feed, after_new);
	} else
		printf("heap not measurable here (ASan): memory checks left to the normal build\n");
	free(msg);
}

int main(void)
{
	test_dsn();
	test_ndr_forms();
	test_reports();
	test_report_well_formed();
	test_list_post_pasting_a_bounce();
	test_original_in_odd_places();
	test_autoreply_and_challenge();
	test_ordinary_lookalikes();
	test_references_and_names();
	test_hostile();
	test_bounded_and_fast();
	return check_finish("test_bounce");
}
