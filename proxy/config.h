/*
 * config - backstop's configuration: one INI file, one table of keys.
 *
 * Every key has exactly one default, written as text in the table in
 * config.c and parsed by the same code as the file. A loaded config is
 * immutable and reference-counted: each session holds the config it started
 * with, so a SIGHUP reload never changes limits under a running transaction.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct cfg_words {     /* space-separated list; a list key may repeat to extend */
	size_t n;
	char **v;
};

struct cidr {
	int family;                 /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct cfg_cidrs {
	size_t n;
	struct cidr *v;
};

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_dest { LOG_DEST_STDERR, LOG_DEST_SYSLOG, LOG_DEST_FILE };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
enum xclient_mode { XCLIENT_AUTO, XCLIENT_ON, XCLIENT_OFF };
/* [backend] identity: how the backend learns the client's address (the
 * order of the names in config.c) */
enum backend_identity { IDENTITY_AUTO, IDENTITY_XCLIENT, IDENTITY_XFORWARD, IDENTITY_PROXY,
	IDENTITY_TRANSPARENT, IDENTITY_NONE };
enum backend_tls { BACKEND_TLS_NONE, BACKEND_TLS_OPPORTUNISTIC, BACKEND_TLS_REQUIRED };
enum spf_mode { SPF_MODE_OFF, SPF_MODE_ANNOTATE, SPF_MODE_ENFORCE };
enum spf_permerror { SPF_PERMERROR_MARK, SPF_PERMERROR_REJECT };
enum batv_mode { BATV_MODE_OFF, BATV_MODE_OBSERVE, BATV_MODE_ENFORCE };
/* content: a failed check waits for end of data, where the bounce filter
 * (filters/bounce.c) lets well-formed read receipts and feedback reports
 * (of a class it does not judge) pass and refuses the rest */
enum batv_refuse_at { BATV_REFUSE_DATA, BATV_REFUSE_RCPT, BATV_REFUSE_CONTENT };
enum dkim_mode { DKIM_MODE_OFF, DKIM_MODE_ANNOTATE, DKIM_MODE_ENFORCE };
enum dmarc_mode { DMARC_MODE_OFF, DMARC_MODE_ANNOTATE, DMARC_MODE_ENFORCE };
enum dmarc_malformed { DMARC_MALFORMED_MARK, DMARC_MALFORMED_REJECT };
enum joejob_mode { JOEJOB_MODE_OFF, JOEJOB_MODE_MARK, JOEJOB_MODE_ENFORCE };
enum bounce_mode { BOUNCE_MODE_OFF, BOUNCE_MODE_OBSERVE, BOUNCE_MODE_ENFORCE };
enum dnsbl_mode { DNSBL_MODE_OFF, DNSBL_MODE_LOG, DNSBL_MODE_ENFORCE };
struct dnsbl_site;   /* filters/dnsbl_sites.h */
enum bounce_unverifiable { BOUNCE_UNVERIFIABLE_REFUSE, BOUNCE_UNVERIFIABLE_MARK,
	BOUNCE_UNVERIFIABLE_ACCEPT };

struct config {
	char *path;
	/* references: sessions, the loop's owner, backend connections; atomic
	 * so that a configuration may be shared by loops on several threads */
	atomic_int refs;

	struct {
		struct cfg_words listen;
		char *hostname;
		char *banner;
		uint64_t greet_pause;     /* ms */
		int bare_newline;         /* enum smtp_newline_policy */
		uint64_t drain_time;      /* ms */
		uint64_t drain_reply_grace; /* ms: after drain_time, for a final dot at the backend */
		char *user;               /* run as this user after binding; "" = stay */
		char *group;              /* and group; "" = the user's login group */
		/* PROXY protocol (v1/v2) on the [server] listeners: the header
		 * from a load balancer in proxy_trusted names the real client */
		bool proxy_protocol;
		struct cfg_cidrs proxy_trusted;
		uint64_t proxy_timeout;   /* ms: the whole header must be in by then */
		/* event loops, one process each (proxy/workers.c); 0 = auto:
		 * one per CPU. 1 = a single process, no master */
		unsigned long workers;
	} server;

	struct {
		char *address;            /* host:port */
		char *helo;
		uint64_t connect_timeout; /* ms */
		uint64_t command_timeout;
		uint64_t data_timeout;
		int xclient;              /* enum xclient_mode */
		int identity;             /* enum backend_identity; auto: as xclient says */
		bool relay_check;         /* the probe refuses mail through a backend
		                             that relays for backstop's own address */
		int tls;                  /* enum backend_tls */
		char *ca_file;
		char *verify_name;
		unsigned long max_connections; /* open at once (inbound) */
		uint64_t idle_timeout;    /* ms; 0 = never close an idle one */
		uint64_t keepalive;       /* ms between NOOPs while a held message
		                             uploads; 0 = none */
		unsigned long pool_size;  /* idle connections kept per loop; 0 = off */
		uint64_t pool_idle;       /* ms an idle pooled connection is kept */
	} backend;

	struct {
		unsigned long max_connections;
		unsigned long max_connections_per_ip;
		unsigned long max_connections_per_net; /* 0 = no limit */
		unsigned long max_recipients;
		uint64_t max_message_size;
		unsigned long max_errors;
		unsigned long junk_command_limit;
		uint64_t greeting_timeout;  /* ms; time for the first command */
		uint64_t command_timeout;
		uint64_t data_timeout;
		unsigned long data_min_rate; /* bytes/s; 0 = off (see session_timer_arm) */
		uint64_t session_timeout;
		uint64_t data_buffer;       /* bytes held before writing to the backend */
		unsigned long ipv4_prefix;  /* max_connections_per_ip counts per network */
		unsigned long ipv6_prefix;
		/* rate limits (filters/ratelimit.h): events per rate_window, per
		 * client address (masked to ipv4_prefix/ipv6_prefix) and per
		 * network (net_ipv4_prefix/net_ipv6_prefix); 0 = off */
		uint64_t rate_window;       /* ms */
		unsigned long conn_rate_per_ip, msg_rate_per_ip, rcpt_rate_per_ip, bounce_rcpt_rate_per_ip;
		unsigned long conn_rate_per_net, msg_rate_per_net, rcpt_rate_per_net, bounce_rcpt_rate_per_net;
		unsigned long net_ipv4_prefix;
		unsigned long net_ipv6_prefix;
		unsigned long rate_table_size; /* memory store: entries at most */
		char *store;                /* "memory" or "redis://address:port[/db]" */
		char redis_host[INET6_ADDRSTRLEN]; /* from store; "" = memory */
		unsigned redis_port;
		unsigned redis_db;
		uint64_t redis_timeout;     /* ms per Redis call */
	} limits;

	struct {
		int level;                /* enum log_level */
		int destination;          /* enum log_dest */
		int format;               /* enum log_format */
		char *file;               /* destination = file: absolute path */
	} log;

	struct {
		bool required;
		bool reject_invalid;
		bool reject_own_name;
	} helo;

	struct {
		char *certificate;
		char *key;
		char *protocols;
		char *ciphers;
		char *ciphersuites;
		char *groups;
		struct cfg_words sni;     /* "name:certfile:keyfile" each */
		bool require;
		uint64_t handshake_timeout;
	} tls;

	struct {
		struct cfg_words servers; /* "127.0.0.1:53" (port added when missing); empty = resolv.conf */
		uint64_t timeout;         /* ms per query */
		unsigned long max_queries;/* in flight */
		bool reverse_lookup;      /* the client's name (FCrDNS) */
		unsigned long cache_size; /* loop-thread answer cache entries; 0 = off */
		uint64_t cache_max_ttl;   /* ms: an answer is kept at most this long */
	} dns;

	struct {
		int mode;                 /* enum spf_mode */
		int permerror;            /* enum spf_permerror */
		struct cfg_cidrs trusted;
	} spf;

	struct {
		int mode;                 /* enum batv_mode */
		struct cfg_words domains;
		char *keys_file;
		unsigned long sign_key;
		unsigned long validity_days;
		int refuse_at;            /* enum batv_refuse_at */
		struct cfg_words exempt;
		struct cfg_words bounce_senders;
		struct cfg_words sign_exempt;
		bool refuse_routed;       /* bounces to %/!/literal recipients */
	} batv;

	struct {
		struct cfg_words listen;
		char *relay;              /* host:port; empty = [backend] address */
		struct cfg_cidrs allow;
	} outbound;

	struct {                      /* [server] state_dir, [bounce] remember, sent_per_day */
		char *state_dir;          /* persisted state (the sentlog) */
		uint64_t remember;        /* ms, whole days: how long sent Message-IDs are kept */
		unsigned long sent_per_day; /* messages through [outbound] a day, for sizing */
	} sentlog;

	struct {                      /* [server] spool_dir, [limits] spool_max */
		char *directory;          /* held messages over data_buffer */
		uint64_t max_size;        /* bytes in spool files at once */
	} spool;

	struct {
		int mode;                 /* enum dkim_mode */
		struct cfg_words require_signed_by;
		unsigned long max_signatures;
		uint64_t timeout;         /* ms: key lookups of one message */
	} dkim;

	struct {
		int mode;                 /* enum dmarc_mode */
		int malformed_from;       /* enum dmarc_malformed */
		char *psl_file;           /* "" = libpsl's built-in list */
		unsigned long pct_seed;   /* 0 = random pct draws */
	} dmarc;

	struct {                      /* filters/joejob.c: forged Received hops */
		int mode;                 /* enum joejob_mode */
	} joejob;

	struct {                      /* filters/bounce.c */
		int mode;                 /* enum bounce_mode */
		int unverifiable;         /* enum bounce_unverifiable */
		struct cfg_words classes; /* names of smtp/bounce.h classes */
		unsigned class_mask;      /* derived: 1u << enum bounce_class */
		struct cfg_words our_relays; /* host names, .domains, CIDRs */
		struct cfg_cidrs relay_nets;  /* derived: its addresses and CIDRs */
		struct cfg_words exempt;  /* addresses (globs) and domains */
	} bounce;
	struct {                      /* filters/dnsbl.c */
		int mode;                 /* enum dnsbl_mode */
		struct cfg_words sites;   /* postscreen's dnsbl_sites entries, as written */
		struct cfg_words null_sender_sites;
		unsigned long threshold;  /* refuse at a score this high */
		char *whitelist_threshold; /* "" = none; else a signed integer */
		uint64_t timeout;         /* ms, per lookup (at most [dns] timeout) */
		uint64_t cache_ttl;       /* ms, the most an answer is kept */
		unsigned long cache_size; /* answers kept */
		/* derived by config_load */
		struct dnsbl_site *site_list, *null_site_list;
		size_t nsites, nnull_sites;
		bool has_allow_threshold;
		long allow_threshold;     /* whitelist_threshold as a number */
	} dnsbl;
	struct {
		struct cfg_words listen;  /* HTTP /metrics and /health; empty = off */
		unsigned long backend_failures; /* /health: 503 after this many
		                                   failed backend connects in a row */
	} metrics;
};

/*
 * config_load - parse path. On error returns NULL and writes every problem,
 * one per line as "file:line: message", to err (errlen bytes).
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/*
 * config_set_overrides - "section.key=value" settings from the command line
 * (-o, as Postfix's): applied after the file by every config_load(), so
 * they survive a SIGHUP reload. A list key given with -o is replaced, not
 * extended. The strings must outlive every load (argv does).
 */
void config_set_overrides(const char *const *overrides, size_t n);

/* config_defaults - a config with every default (for tools and tests). */
struct config *config_defaults(void);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* config_dump - write every key with its effective value (backstop -n). */
void config_dump(const struct config *cfg, FILE *out);

/* Table access for the test that checks the example config documents
 * every key. Returns "section.key" for i < count, NULL after. */
const char *config_key_name(size_t i);

/* config_redis_url_parse - "redis://ADDRESS:PORT[/DB]" ([limits] store):
 * an IPv4 address or a bracketed IPv6 one, never a name; 0, or -1 when
 * url is not one. */
int config_redis_url_parse(const char *url, char *host, size_t hostlen, unsigned *port, unsigned *db);

/* Helpers used by modules that handle addresses and lists. */
bool cidrs_match(const struct cfg_cidrs *list, const struct sockaddr *sa);
bool words_contains_ci(const struct cfg_words *w, const char *s);
/* parse "host:port", "[v6]:port"; returns 0 or -1 */
int hostport_split(const char *s, char *host, size_t hostlen, unsigned *port);

#endif
