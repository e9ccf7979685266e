"""
bounce_msgs - bounces, auto-replies, read receipts and ordinary mail for the
bounce check's tests (tests/integration/bounce_filter.py), written the way
the MTAs write them: a Postfix DSN (multipart/report with
text/rfc822-headers), an Exim NDR quoting the original inline, a vacation
auto-reply, an RFC 8098 read receipt, and reports that quote nothing.
Every builder returns bytes with CRLF line ends (not dot-stuffed).
"""
import hashlib
import hmac
import random
import time

DATE = "Mon, 07 Dec 2026 00:10:00 +0000"


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def msgid(tag="m"):
    return "<%s.%08x@%s>" % (tag, random.getrandbits(32), "spammer.example")


def py_tag(addr, key, secret, day_offset=0, validity=7):
    """A BATV prvs tag (draft-levine-smtp-batv-01), as Exim makes it."""
    ddd = "%03d" % ((int(time.time()) // 86400 + day_offset + validity) % 1000)
    mac = hmac.new(secret.encode(), ("%d%s%s" % (key, ddd, addr)).encode(),
                   hashlib.sha1).hexdigest()[:6]
    return "prvs=%d%s%s=%s" % (key, ddd, mac, addr)


def original_headers(sender="user@test.example", mid=None, rcpt="victim@remote.example",
                     received=None, return_path=None, extra=()):
    """The header section of the message a report answers (str, LF)."""
    mid = mid or msgid("spam")
    if received is None:
        received = ["from mx.remote.example (mx.remote.example [198.51.100.20])\n"
                    "\tby mail.remote.example (Postfix) with ESMTP id 4AbCdE;\n\t" + DATE,
                    "from spamhost.example (unknown [203.0.113.66])\n"
                    "\tby mx.remote.example (Postfix) with ESMTP id 9XyZ;\n\t" + DATE]
    lines = []
    if return_path is not None:
        lines.append("Return-Path: <%s>" % return_path)
    lines += ["Received: " + r for r in received]
    lines += list(extra)
    lines += ["From: <%s>" % sender, "To: <%s>" % rcpt, "Subject: Cheap watches",
              "Date: " + DATE, "Message-ID: " + mid]
    return "\n".join(lines) + "\n"


def postfix_dsn(orig_headers, rcpt="user@test.example", boundary="B0UND.1"):
    """A Postfix non-delivery DSN: multipart/report; report-type=
    delivery-status, with the original's headers as text/rfc822-headers."""
    return crlf("""From: MAILER-DAEMON@mail.remote.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: %(rcpt)s
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="%(b)s"
Content-Transfer-Encoding: 7bit
Message-Id: <20261207001100.1A2B3C@mail.remote.example>
Date: %(date)s

This is a MIME-encapsulated message.

--%(b)s
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<victim@remote.example>: host mx.remote.example[198.51.100.20] said: 550 5.1.1
    <victim@remote.example>: Recipient address rejected: User unknown

--%(b)s
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.remote.example
X-Postfix-Queue-ID: 4AbCdE
Arrival-Date: %(date)s

Final-Recipient: rfc822; victim@remote.example
Original-Recipient: rfc822;victim@remote.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <victim@remote.example>: Recipient address
    rejected: User unknown

--%(b)s
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

%(orig)s
--%(b)s--
""" % {"rcpt": rcpt, "b": boundary, "date": DATE, "orig": orig_headers})


def exim_ndr(orig_headers, rcpt="user@test.example"):
    """An Exim bounce: plain text, the original quoted inline after
    "------ This is a copy of the message, including all the headers."""
    return crlf("""From: Mail Delivery System <Mailer-Daemon@mail.remote.example>
To: %(rcpt)s
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied
Message-Id: <E1abcde-0001-00@mail.remote.example>
Date: %(date)s

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  victim@remote.example
    host mx.remote.example [198.51.100.20]
    SMTP error from remote mail server after RCPT TO:<victim@remote.example>:
    550 5.1.1 User unknown

------ This is a copy of the message, including all the headers. ------

%(orig)s
Buy cheap watches now.
""" % {"rcpt": rcpt, "date": DATE, "orig": orig_headers})


def bare_ndr(rcpt="user@test.example"):
    """A bounce that quotes nothing of the original."""
    return crlf("""From: Mail Delivery System <MAILER-DAEMON@mail.remote.example>
To: %(rcpt)s
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-Id: <bare.1@mail.remote.example>
Date: %(date)s

This is the mail system at host mail.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<victim@remote.example>: host mx.remote.example[198.51.100.20] said: 550 5.1.1
    <victim@remote.example>: Recipient address rejected: User unknown
""" % {"rcpt": rcpt, "date": DATE})


def vacation(in_reply_to, rcpt="user@test.example", sender="victim@remote.example"):
    """An RFC 3834 auto-reply (vacation) that quotes nothing."""
    return crlf("""From: Victim <%(sender)s>
To: <%(rcpt)s>
Subject: Out of office: Cheap watches
Auto-Submitted: auto-replied
In-Reply-To: %(irt)s
References: %(irt)s
Message-Id: %(mid)s
Date: %(date)s

I am out of the office until Monday and will read your message then.
""" % {"rcpt": rcpt, "sender": sender, "irt": in_reply_to, "mid": msgid("vac"),
       "date": DATE})


def read_receipt(rcpt="user@test.example", boundary="MDN.1"):
    """An RFC 8098 disposition notification."""
    return crlf("""From: Victim <victim@remote.example>
To: <%(rcpt)s>
Subject: Read: Lunch
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification;
\tboundary="%(b)s"
Message-Id: <mdn.1@remote.example>
Date: %(date)s

--%(b)s
Content-Type: text/plain; charset=us-ascii

The message sent on %(date)s to victim@remote.example with subject "Lunch"
has been displayed.

--%(b)s
Content-Type: message/disposition-notification

Reporting-UA: mua.remote.example; Mail
Final-Recipient: rfc822;victim@remote.example
Original-Message-ID: <lunch.1@test.example>
Disposition: manual-action/MDN-sent-manually; displayed

--%(b)s--
""" % {"rcpt": rcpt, "b": boundary, "date": DATE})


def ordinary(rcpt="user@test.example", subject="Lunch on Friday?"):
    return crlf("""From: Friend <friend@remote.example>
To: <%(rcpt)s>
Subject: %(subject)s
Message-Id: %(mid)s
Date: %(date)s

Are you free for lunch on Friday? Tell me about the Undelivered Mail
problem you had last week.
""" % {"rcpt": rcpt, "subject": subject, "mid": msgid("ord"), "date": DATE})


def _canon_msgid(v):
    v = v.strip(" \t\r\n")
    lt = v.find("<")
    gt = v.find(">", lt) if lt >= 0 else -1
    if lt >= 0 and gt >= 0:
        v = v[lt:gt + 1]
    return v.replace("\r", "").replace("\n", "")


def _canon_date(v):
    """Folding and comments (nested, with quoted pairs) out, blanks made one."""
    out, depth, i = [], 0, 0
    while i < len(v):
        c = v[i]
        if depth > 0 or c == "(":
            if c == "\\" and i + 1 < len(v):
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            out.append(" ")
        else:
            out.append(c)
        i += 1
    return " ".join("".join(out).replace("\r", " ").replace("\n", " ").split())


def _canon_sender(v):
    v = v.strip(" \t\r\n")
    if len(v) >= 2 and v[0] == "<" and v[-1] == ">":
        v = v[1:-1]
    import re
    v = re.sub(r"^(?i:prvs=)\d{4}[0-9a-fA-F]{6}=", "", v)
    if "@" in v:
        local, dom = v.rsplit("@", 1)
        v = local + "@" + dom.lower()
    return v


def py_bsig(secret, key, message_id, date, sender, day=None):
    """The X-Backstop-Sig value filters/bsig.c makes, computed independently:
    base64url(HMAC-SHA256(secret, "backstop-sig v=1" NUL k NUL day NUL
    msgid NUL date NUL sender)[:16]), inputs canonicalised as bsig.h says."""
    import base64
    day = int(time.time()) // 86400 if day is None else day
    data = b"\0".join([b"backstop-sig v=1", str(key).encode(), str(day).encode(),
                       _canon_msgid(message_id).encode(), _canon_date(date).encode(),
                       _canon_sender(sender).encode()])
    mac = hmac.new(secret.encode(), data, hashlib.sha256).digest()[:16]
    return "v=1; k=%d; t=%d; s=%s" % (key, day, base64.urlsafe_b64encode(mac).decode().rstrip("="))
