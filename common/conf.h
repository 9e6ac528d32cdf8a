/*
 * Configuration: one table (conf_table.c) declares every key with its type,
 * default, bounds, which processes receive it, and a one-line doc.  The
 * table drives parsing of the libconfig file, --KEY=VALUE overrides, the
 * per-process slice sent to children (as libconfig text), `mtad -n`, and
 * the test that man/mtad.conf.5 documents every key.
 *
 * Errors are returned as -1 with *cause set to an allocated
 * "FILE:LINE: what is wrong" (or "--KEY: what is wrong" for overrides).
 */
#ifndef MTAD_CONF_H
#define MTAD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_type {
	CONF_T_STR,		/* string */
	CONF_T_INT,		/* integer within [min, max] */
	CONF_T_BOOL,		/* true/false */
	CONF_T_SIZE,		/* bytes: integer or "100MB", "512KB", "1GB" */
	CONF_T_INTLIST,		/* one integer or a list, or "a,b,c" */
	CONF_T_STRLIST,		/* one string or a list of strings */
	CONF_T_SMARTHOSTS,	/* list of groups: hostname port username ... */
	CONF_T_ROUTES,		/* list of groups: domain host port ... */
};

#define CONF_F_SECRET	0x1	/* never logged or printed */
#define CONF_F_RESTART	0x4	/* a change needs a restart, not a reload */
#define CONF_F_ALIAS	0x8	/* another name for the row above: same field */

struct conf_intlist {
	int		*v;
	size_t		 n;
};

struct conf_strlist {
	char		**v;
	size_t		  n;
};

struct conf_smarthost {
	char		*hostname;
	int		 port;		/* default 25 */
	char		*username;	/* NULL: no AUTH */
	char		*password;
	int		 weight;	/* default 1 */
	int		 backup;	/* bool */
};

struct conf_smarthosts {
	struct conf_smarthost	*v;
	size_t			 n;
};

struct conf_route {
	char		*domain;
	char		*host;
	int		 port;		/* 0 (default): smtp-mx-port */
	char		*username;
	char		*password;
	char		*security;	/* tls_policy.h name, NULL: unset */
};

struct conf_routes {
	struct conf_route	*v;
	size_t			 n;
};

/* Every field is named after its key with '-' turned into '_'. */
struct conf {
	/* inbound (smtpd; listeners are bound by the master) */
	char			*smtp_ip;
	struct conf_intlist	 smtp_port;
	struct conf_intlist	 smtp_secure_port;
	char			*smtp_certificate;
	char			*smtp_key;
	char			*smtp_ciphers;
	char			*smtp_range;
	char			*smtp_username;
	char			*smtp_password;
	char			*smtp_proxy;
	uint64_t		 smtp_maxsize;
	char			*smtp_hostname;
	int			 smtp_mq_headers;
	int			 smtp_max_recipients;
	int			 smtp_timeout;
	int			 smtp_max_connections;
	int			 smtp_max_connections_per_ip;
	int			 smtp_session_timeout;
	int			 smtp_greet_delay;

	/* routing (smtp; qmgr only needs to know whether a smarthost is set) */
	char			*smarthost;
	int			 smarthost_port;
	char			*smarthost_username;
	char			*smarthost_password;
	struct conf_smarthosts	 smarthosts;
	struct conf_routes	 routes;
	char			*smtp_sink_address;
	int			 smtp_sink_port;
	char			*smtp_sink_username;
	char			*smtp_sink_password;
	int			 smtp_connect_timeout;
	int			 smtp_mx_port;
	char			*smtp_tls_policy;

	/* RabbitMQ bridge (qmgr) */
	char			*rabbitmq_address;
	char			*rabbitmq_inbox;
	char			*rabbitmq_outbox;
	char			*rabbitmq_results;
	char			*rabbitmq_success;
	char			*rabbitmq_failure;
	char			*rabbitmq_retry;
	int			 rabbitmq_prefetch;
	int			 rabbitmq_spool_max;
	int			 rabbitmq_heartbeat;

	/* queue (qmgr) */
	struct conf_intlist	 retries;
	int			 max_delivery_time;
	int			 delay_warning_time;
	int			 max_connections_per_queue;
	int			 max_connections;
	char			*spool_dir;

	/* processes (master) */
	char			*user;
	char			*control_socket;
	char			*pid_file;
	int			 smtp_workers;	/* 0: number of CPUs */

	/* resolver */
	struct conf_strlist	 resolver_nameservers;

	char			*log_level;
};

struct conf_key {
	const char	*name;
	enum conf_type	 type;
	size_t		 offset;	/* offsetof(struct conf, field) */
	const char	*def;		/* default in libconfig value syntax, NULL: none */
	long long	 min;		/* bounds for INT/SIZE/INTLIST items */
	long long	 max;
	unsigned	 procs;		/* P_* mask of processes that receive it */
	unsigned	 flags;		/* CONF_F_* */
	const char	*doc;		/* one line */
};

extern const struct conf_key	conf_table[];
extern const size_t		conf_table_len;

struct conf	*conf_new(void);		/* every key at its default */
void		 conf_free(struct conf *);
/* Read a libconfig file over the current values. */
int		 conf_load_file(struct conf *, const char *path, char **cause);
/* Read libconfig text (a slice from the master). */
int		 conf_load_text(struct conf *, const char *text, char **cause);
/* Apply one --KEY=VALUE override. */
int		 conf_override(struct conf *, const char *key,
		    const char *value, char **cause);
/* Checks across keys, after everything is loaded. */
int		 conf_validate(struct conf *, char **cause);
/* libconfig text with the keys whose procs mask includes 1 << proc. */
char		*conf_slice(const struct conf *, int proc);
/* Print every key and value (secrets masked), for mtad -n -v. */
void		 conf_print(const struct conf *, FILE *);
/*
 * On reload: keep the running value of every CONF_F_RESTART key in new;
 * the changed ones are named in the result (allocated), NULL if none.
 */
char		*conf_keep_restart(struct conf *new, struct conf *old);
const struct conf_key *conf_find(const char *name);
/* Parse "100MB", "512KB", "1GB", "1024": -1 on error. */
int		 conf_parse_size(const char *, uint64_t *);

#endif
