# smtp/ - the protocol library: parsers and rules, no I/O.
noinst_LIBRARIES += libsmtp.a
libsmtp_a_SOURCES = \
	smtp/smtp_line.c smtp/smtp_line.h \
	smtp/smtp_cmd.c smtp/smtp_cmd.h \
	smtp/smtp_addr.c smtp/smtp_addr.h \
	smtp/smtp_reply.c smtp/smtp_reply.h \
	smtp/smtp_data.c smtp/smtp_data.h \
	smtp/smtp_wire.c smtp/smtp_wire.h \
	smtp/smtp_fields.c smtp/smtp_fields.h \
	smtp/smtp_server.c smtp/smtp_server.h
libsmtp_a_SOURCES += smtp/smtp_from.c smtp/smtp_from.h
# MIME walker and bounce classifier (issue 11): no I/O, see smtp/mime.h, smtp/bounce.h
libsmtp_a_SOURCES += smtp/mime.c smtp/mime.h smtp/bounce.c smtp/bounce.h \
	smtp/bounce_rules.c smtp/bounce_rules.h smtp/bounce_fields.c smtp/bounce_fields.h \
	smtp/url_hosts.c smtp/url_hosts.h smtp/received_ip.c smtp/received_ip.h
# PROXY v2 header towards the backend ([backend] identity = proxy, issue 12)
libsmtp_a_SOURCES += smtp/proxy_out.c smtp/proxy_out.h
# forged Received hops (issue 15): the from and by parts of a Received field
libsmtp_a_SOURCES += smtp/smtp_received.c smtp/smtp_received.h
# PROXY protocol header (issue 12) and other protocols spoken to the SMTP port
libsmtp_a_SOURCES += smtp/proxy_proto.c smtp/proxy_proto.h smtp/smtp_foreign.c smtp/smtp_foreign.h
