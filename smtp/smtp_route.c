/*
 * The next hop of a job, in order of precedence (DESIGN section 5):
 *
 *   1. a per-message smarthost: the queue key "(smarthost) HOST:PORT",
 *      with the credentials of the message's "smarthost" property;
 *   2. the global smarthosts list, in the order smarthost_order() gives
 *      (weighted among healthy primaries, then backups, then hosts marked
 *      down), or else the single smarthost (smarthost, smarthost-port);
 *   3. a route for the recipient domain (routes): a fixed host;
 *   4. the MX hosts of the recipient domain (the queue key), lowest
 *      preference first, ties shuffled (RFC 5321 5.1); no MX (NODATA)
 *      means the domain itself; a null MX (RFC 7505) fails the mail.
 *
 * A host that is an IP literal is used as is; others are resolved to A
 * and AAAA (both asked at once, IPv4 tried first).  Each address is tried
 * in turn: an idle connection to it with the same credentials is reused
 * when there is one, else a new one is opened.  Failures before a
 * transaction (no connection, a 4xx/5xx greeting, a refused EHLO/HELO,
 * STARTTLS or AUTH trouble) move on to the next address, then the next
 * host.  When none is left the job ends with the last error: deferred if
 * any failure along the way was temporary, failed if every one was
 * permanent.  A smarthost of the list that did not connect or greet is
 * marked down (smtp_smarthost.c) when the job moves past it.
 *
 * Each address gets the TLS policy of the delivery (tls_policy.h): the
 * message's "security" property, else the route's security member (only
 * when a route chose the host), else smtp-tls-policy; and the source
 * address smtp_conn_source() picks for it.  A source address that cannot
 * be bound ends the job at once (deferred 4.4.0): it is this machine's
 * trouble, and no other host would fare better.
 *
 * With a sink (smtp_sink.c) the choice above is made as usual, but no
 * name is resolved: every connection goes to the sink's address, with
 * the sink's credentials, and shows as relay=sink[ip]:port.
 *
 * Credentials are copied into the route (and the session), so a reload
 * that frees the old config does not pull them away; they are wiped when
 * freed.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns_parse.h"
#include "envelope.h"
#include "hostport.h"
#include "log.h"
#include "props_smarthost.h"
#include "proto.h"
#include "smarthost_order.h"
#include "smtp.h"
#include "tls_policy.h"
#include "xmalloc.h"

#define ROUTE_ADDRS_MAX	10	/* addresses tried per host */
#define ROUTE_HOSTS_MAX	SMARTHOST_MAX	/* hosts tried per job */
#define ROUTE_MX_MAX	20		/* of them MX hosts */

struct smtp_host {
	char		*name;
	uint32_t	 pref;
	int		 port;
	char		*user;		/* NULL: no AUTH */
	char		*pass;
	int		 shidx;		/* entry of the smarthosts list, or -1 */
};

struct smtp_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
};

struct smtp_route {
	struct smtp_job		*job;
	int			 fixed;		/* smarthost or route: name
						   failures are soft */
	int			 sink;		/* connections go to the sink */
	unsigned		 shgen;		/* smarthosts list generation */
	int			 policy;	/* the route's "security", or
						   UNSET */
	char			*domain;

	struct smtp_host	*hosts;
	size_t			 nhosts, hnext;
	struct smtp_addr	*addrs;		/* of hosts[hnext - 1] */
	size_t			 naddrs, anext;
	struct smtp_addr	*addrs6;	/* AAAA, while collecting */
	size_t			 naddrs6;
	int			 host_down;	/* it did not connect or greet */
	int			 notls;		/* this address: no STARTTLS */

	struct smtp_res_req	*mxq;
	struct smtp_res_req	*aq;		/* A of the current host */
	struct smtp_res_req	*aaaaq;
	int			 astatus, aaaastatus;

	int			 err_set;
	int			 soft_seen;
	int			 err_code;
	char			 err_dsn[SMTP_DSN_MAX];
	char			 err_text[SMTP_TEXT_MAX];
};

static void	smtp_route_next_host(struct smtp_route *);

/* A credential to copy: NULL unless a user name is given. */
static char *
smtp_route_cred(const char *user, const char *s)
{
	if (user == NULL || user[0] == '\0')
		return NULL;
	return xstrdup(s != NULL ? s : "");
}

/*
 * Add a host to try.  "[name]" and "[IPv6:addr]" (an address literal,
 * RFC 5321 4.1.3) lose their decoration: brackets only say "no MX".
 */
static struct smtp_host *
smtp_route_add_host(struct smtp_route *rt, const char *name, uint32_t pref,
    int port)
{
	struct smtp_host	*h;
	size_t			 len = strlen(name);

	if (rt->nhosts >= ROUTE_HOSTS_MAX)
		return NULL;
	rt->hosts = xreallocarray(rt->hosts, rt->nhosts + 1,
	    sizeof(*rt->hosts));
	h = &rt->hosts[rt->nhosts++];
	memset(h, 0, sizeof(*h));
	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len > 5 && strncasecmp(name, "IPv6:", 5) == 0) {
			name += 5;
			len -= 5;
		}
		h->name = xstrndup(name, len);
	} else
		h->name = xstrdup(name);
	h->pref = pref;
	h->port = port;
	h->shidx = -1;
	return h;
}

/* Add a host with credentials (user NULL or "": none). */
static void
smtp_route_add_auth(struct smtp_route *rt, const char *name, int port,
    const char *user, const char *pass, int shidx)
{
	struct smtp_host	*h;

	if ((h = smtp_route_add_host(rt, name, 0, port)) == NULL)
		return;
	h->user = smtp_route_cred(user, user);
	h->pass = smtp_route_cred(user, pass);
	h->shidx = shidx;
}

static void
smtp_route_add_addr(struct smtp_addr **v, size_t *n,
    const struct sockaddr_storage *ss, socklen_t len)
{
	if (*n >= ROUTE_ADDRS_MAX)
		return;
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	memcpy(&(*v)[*n].ss, ss, sizeof(*ss));
	(*v)[*n].len = len;
	(*n)++;
}

/* Remember why this address or host failed, for when none is left. */
static void
smtp_route_error(struct smtp_route *rt, int soft, int code, const char *dsn,
    const char *text)
{
	rt->err_set = 1;
	if (soft)
		rt->soft_seen = 1;
	rt->err_code = code;
	snprintf(rt->err_dsn, sizeof(rt->err_dsn), "%s", dsn);
	snprintf(rt->err_text, sizeof(rt->err_text), "%s", text);
}

/* End the job: every recipient gets the same outcome. */
static void
smtp_route_end(struct smtp_route *rt, int status, int code, const char *dsn,
    const char *text)
{
	struct smtp_job	*job = rt->job;

	smtp_job_rcpt_all(job, status, code, dsn, text, NULL);
	smtp_job_done(job);		/* frees the route too */
}

/* No host or address left: the last error decides, softened if needed. */
static void
smtp_route_exhausted(struct smtp_route *rt)
{
	char	 dsn[SMTP_DSN_MAX];

	if (!rt->err_set) {
		smtp_route_end(rt, RCPT_DEFERRED, 0, "4.4.4",
		    "no usable host to deliver to");
		return;
	}
	snprintf(dsn, sizeof(dsn), "%s", rt->err_dsn);
	if (rt->soft_seen) {
		dsn[0] = '4';
		smtp_route_end(rt, RCPT_DEFERRED, rt->err_code, dsn,
		    rt->err_text);
	} else
		smtp_route_end(rt, RCPT_FAILED, rt->err_code, dsn,
		    rt->err_text);
}

/* The session parameters for one address of the current host. */
static void
smtp_route_dest(struct smtp_route *rt, const struct smtp_addr *a,
    struct smtp_dest *d)
{
	const struct smtp_host	*h = &rt->hosts[rt->hnext - 1];

	memset(d, 0, sizeof(*d));
	d->sa = (const struct sockaddr *)&a->ss;
	d->salen = a->len;
	d->notls = rt->notls;
	d->policy = tls_policy_pick(rt->job->policy, rt->policy,
	    smtp_conf.tls_policy);
	d->source = smtp_conn_source(rt->job, d->sa);
	if (rt->sink) {
		d->name = "sink";
		d->sni = smtp_conf.sink;
		if (smtp_conf.sink_username[0] != '\0') {
			d->user = smtp_conf.sink_username;
			d->pass = smtp_conf.sink_password;
		}
		return;
	}
	d->name = h->name;
	d->sni = h->name;
	d->user = h->user;
	d->pass = h->pass;
}

/*
 * A new connection to d: 0 when it is on its way, -1 when it failed (the
 * error is recorded), -2 when the job has ended because the source
 * address could not be bound: no other host would fare better.
 */
static int
smtp_route_open(struct smtp_route *rt, const struct smtp_dest *d)
{
	char	 why[SMTP_TEXT_MAX];

	switch (smtp_session_open(rt->job, d, why, sizeof(why))) {
	case 0:
		return 0;
	case -2:
		log_warnx("%s: %s", rt->job->msgid, why);
		smtp_route_end(rt, RCPT_DEFERRED, 0, "4.4.0", why);
		return -2;
	}
	rt->host_down = 1;
	smtp_route_error(rt, 1, 0, "4.4.1", why);
	return -1;
}

/* Try the addresses of the current host; then the next host. */
static void
smtp_route_next_addr(struct smtp_route *rt)
{
	struct smtp_job		*job = rt->job;
	struct smtp_dest	 d;

	while (rt->anext < rt->naddrs) {
		rt->notls = 0;
		smtp_route_dest(rt, &rt->addrs[rt->anext++], &d);
		if (smtp_session_reuse(job, &d) == 0)
			return;
		if (smtp_route_open(rt, &d) != -1)
			return;
	}
	smtp_route_next_host(rt);
}

/* Called by the session: this address failed before MAIL; next. */
void
smtp_route_failed(struct smtp_job *job, int soft, int down, int code,
    const char *dsn, const char *text)
{
	struct smtp_route	*rt = job->route;

	if (down)
		rt->host_down = 1;
	smtp_route_error(rt, soft, code, dsn, text);
	smtp_route_next_addr(rt);
}

/* The same address again, on a new connection. */
void
smtp_route_retry(struct smtp_job *job)
{
	struct smtp_route	*rt = job->route;
	struct smtp_dest	 d;

	smtp_route_dest(rt, &rt->addrs[rt->anext - 1], &d);
	if (smtp_route_open(rt, &d) == -1)
		smtp_route_next_addr(rt);
}

/*
 * Opportunistic TLS gives way to plaintext when the handshake fails, as
 * Postfix's "may" level does: an encrypted delivery is not worth a lost
 * one.  Not with credentials: those never go out in plaintext because a
 * handshake failed, so that address fails with 4.7.0 instead.  Nor under
 * the required policy, where it fails with 4.7.4 (RFC 3463: security
 * features not supported).
 */
void
smtp_route_tls_failed(struct smtp_job *job, const char *text)
{
	struct smtp_route	*rt = job->route;
	struct smtp_dest	 d;
	char			 why[SMTP_TEXT_MAX];

	smtp_route_dest(rt, &rt->addrs[rt->anext - 1], &d);
	if (d.policy == TLS_POLICY_REQUIRED) {
		snprintf(why, sizeof(why), "TLS is required, but %s", text);
		smtp_route_failed(job, 1, 0, 0, "4.7.4", why);
		return;
	}
	if (d.user != NULL || rt->notls) {
		smtp_route_failed(job, 1, 0, 0, "4.7.0", text);
		return;
	}
	log_info("%s: %s; trying again without TLS", job->msgid, text);
	rt->notls = 1;
	smtp_route_retry(job);
}

/* Both address lookups of a host are in: try what they gave. */
static void
smtp_route_addrs_done(struct smtp_route *rt)
{
	const char	*host = rt->hosts[rt->hnext - 1].name;
	char		 text[SMTP_TEXT_MAX];
	size_t		 i;

	for (i = 0; i < rt->naddrs6; i++)
		smtp_route_add_addr(&rt->addrs, &rt->naddrs, &rt->addrs6[i].ss,
		    rt->addrs6[i].len);
	free(rt->addrs6);
	rt->addrs6 = NULL;
	rt->naddrs6 = 0;
	if (rt->naddrs > 0) {
		smtp_route_next_addr(rt);
		return;
	}
	rt->host_down = 1;
	if (rt->astatus == RES_TEMPFAIL || rt->aaaastatus == RES_TEMPFAIL) {
		snprintf(text, sizeof(text), "Host or domain name not found. "
		    "Name service error for name=%s type=A: Host not found, "
		    "try again", host);
		smtp_route_error(rt, 1, 0, "4.4.3", text);
	} else {
		snprintf(text, sizeof(text), "Host or domain name not found. "
		    "Name service error for name=%s type=A: Host not found",
		    host);
		/* A mistyped smarthost or route must not bounce all mail. */
		smtp_route_error(rt, rt->fixed, 0,
		    rt->fixed ? "4.4.4" : "5.4.4", text);
	}
	smtp_route_next_host(rt);
}

/* Collect one A or AAAA answer into the address list of its family. */
static void
smtp_route_addr_answer(struct smtp_route *rt, const struct dns_answer *a,
    int v6)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 port = rt->hosts[rt->hnext - 1].port;
	size_t			 i;

	for (i = 0; a->status == RES_OK && i < a->n; i++) {
		if (hostport_ip(a->v[i].value, port, &ss, &len) == -1 ||
		    ss.ss_family != (v6 ? AF_INET6 : AF_INET))
			continue;
		if (v6)
			smtp_route_add_addr(&rt->addrs6, &rt->naddrs6, &ss,
			    len);
		else
			smtp_route_add_addr(&rt->addrs, &rt->naddrs, &ss, len);
	}
	if (rt->aq == NULL && rt->aaaaq == NULL)
		smtp_route_addrs_done(rt);
}

static void
smtp_route_a_cb(const struct dns_answer *a, void *arg)
{
	struct smtp_route	*rt = arg;

	rt->aq = NULL;
	rt->astatus = a->status;
	smtp_route_addr_answer(rt, a, 0);
}

static void
smtp_route_aaaa_cb(const struct dns_answer *a, void *arg)
{
	struct smtp_route	*rt = arg;

	rt->aaaaq = NULL;
	rt->aaaastatus = a->status;
	smtp_route_addr_answer(rt, a, 1);
}

/* The job leaves a host without a transaction: was it down? */
static void
smtp_route_host_done(struct smtp_route *rt)
{
	const struct smtp_host	*h = &rt->hosts[rt->hnext - 1];

	if (rt->host_down && h->shidx >= 0 && !rt->sink)
		smtp_smarthost_down((size_t)h->shidx, rt->shgen, rt->err_text);
	rt->host_down = 0;
}

/*
 * On to the next host: the sink's address with a sink, an IP literal at
 * once, a name through the DNS.
 */
static void
smtp_route_next_host(struct smtp_route *rt)
{
	struct sockaddr_storage	 ss;
	const struct sockaddr	*sa;
	socklen_t		 len;
	const struct smtp_host	*h;

	if (rt->hnext > 0)
		smtp_route_host_done(rt);
	if (rt->hnext >= rt->nhosts) {
		smtp_route_exhausted(rt);
		return;
	}
	h = &rt->hosts[rt->hnext++];
	free(rt->addrs);
	rt->addrs = NULL;
	rt->naddrs = rt->anext = 0;
	if (rt->sink) {
		if ((sa = smtp_sink_addr(&len)) == NULL)
			log_panic("%s: sink address lost", __func__);
		memcpy(&ss, sa, len);
		log_debug("%s: %s:%d through the sink", rt->job->msgid,
		    h->name, h->port);
		smtp_route_add_addr(&rt->addrs, &rt->naddrs, &ss, len);
		smtp_route_next_addr(rt);
		return;
	}
	if (hostport_ip(h->name, h->port, &ss, &len) == 0) {
		smtp_route_add_addr(&rt->addrs, &rt->naddrs, &ss, len);
		smtp_route_next_addr(rt);
		return;
	}
	log_debug("%s: resolving %s", rt->job->msgid, h->name);
	rt->aq = smtp_res_query(RES_T_A, h->name, smtp_route_a_cb, rt);
	rt->aaaaq = smtp_res_query(RES_T_AAAA, h->name, smtp_route_aaaa_cb,
	    rt);
}

/* Shuffle each run of hosts with the same preference. */
static void
smtp_route_shuffle(struct smtp_route *rt)
{
	struct smtp_host	 t;
	size_t			 i, j, start = 0, end, k;

	while (start < rt->nhosts) {
		for (end = start + 1; end < rt->nhosts &&
		    rt->hosts[end].pref == rt->hosts[start].pref; end++)
			;
		for (i = end - 1; i > start; i--) {
			k = i - start + 1;
			j = start + arc4random_uniform(k);
			t = rt->hosts[i];
			rt->hosts[i] = rt->hosts[j];
			rt->hosts[j] = t;
		}
		start = end;
	}
}

/* The MX answer for the domain. */
static void
smtp_route_mx_cb(const struct dns_answer *a, void *arg)
{
	struct smtp_route	*rt = arg;
	char			 text[SMTP_TEXT_MAX];
	size_t			 i;

	rt->mxq = NULL;
	switch (a->status) {
	case RES_OK:
		if (a->n == 1 && (strcmp(a->v[0].value, ".") == 0 ||
		    a->v[0].value[0] == '\0')) {
			snprintf(text, sizeof(text), "Domain %s does not "
			    "accept mail (nullMX)", rt->domain);
			smtp_route_end(rt, RCPT_FAILED, 0, "5.1.10", text);
			return;
		}
		for (i = 0; i < a->n && rt->nhosts < ROUTE_MX_MAX; i++)
			if (strcmp(a->v[i].value, ".") != 0 &&
			    a->v[i].value[0] != '\0')
				smtp_route_add_host(rt, a->v[i].value,
				    a->v[i].pref, smtp_conf.mx_port);
		smtp_route_shuffle(rt);
		break;
	case RES_NODATA:
		smtp_route_add_host(rt, rt->domain, 0, smtp_conf.mx_port);
		break;
	case RES_NXDOMAIN:
		snprintf(text, sizeof(text), "Host or domain name not found. "
		    "Name service error for name=%s type=MX: Host not found",
		    rt->domain);
		smtp_route_end(rt, RCPT_FAILED, 0, "5.1.2", text);
		return;
	default:
		snprintf(text, sizeof(text), "Host or domain name not found. "
		    "Name service error for name=%s type=MX: Host not found, "
		    "try again", rt->domain);
		smtp_route_end(rt, RCPT_DEFERRED, 0, "4.4.3", text);
		return;
	}
	smtp_route_next_host(rt);
}

/*
 * "HOST:PORT" of a per-message smarthost key into host and port; the
 * host may be "[ip6]".  -1 when there is no valid port.
 */
static int
smtp_route_split(const char *s, char **host, int *port)
{
	const char	*colon = strrchr(s, ':');
	char		*end;
	long		 p;

	if (colon == NULL || colon == s)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return -1;
	*host = xstrndup(s, colon - s);
	*port = (int)p;
	return 0;
}

/* The domain to look up: the queue key, or a recipient's when the key
 * is not a domain (a "(smarthost)" key left over from a reload). */
static char *
smtp_route_domain(const struct smtp_job *job)
{
	const char	*at;

	if (job->key[0] != '(')
		return xstrdup(job->key);
	at = strrchr(job->rcpts[0].addr, '@');
	return xstrdup(at != NULL ? at + 1 : "");
}

/*
 * The message's own smarthost.  Its credentials are taken from the
 * properties only when they name the same host and port as the queue
 * key, which qmgr derived from them.  0 when the host is added, 1 when
 * the key has no valid HOST:PORT, -1 when the job has ended.
 */
static int
smtp_route_permsg(struct smtp_route *rt, const char *hostport)
{
	struct smtp_job		*job = rt->job;
	struct props_smarthost	 sh;
	char			*host, *key;
	int			 port, r;

	if (smtp_route_split(hostport, &host, &port) == -1)
		return 1;
	rt->fixed = 1;
	key = envelope_smarthost_key(job->props);
	r = key != NULL && strcmp(key, job->key) == 0 ?
	    props_smarthost(job->props, &sh) : 0;
	free(key);
	if (r == -1) {
		free(host);
		smtp_route_end(rt, RCPT_FAILED, 0, "5.3.5", "invalid "
		    "smarthost username or password in the message "
		    "properties");
		return -1;
	}
	smtp_route_add_auth(rt, host, port, r == 1 ? sh.username : NULL,
	    r == 1 ? sh.password : NULL, -1);
	if (r == 1)
		props_smarthost_clear(&sh);
	free(host);
	return 0;
}

/* The global smarthosts list, in this delivery's order. */
static void
smtp_route_smarthosts(struct smtp_route *rt)
{
	const struct conf_smarthost	*sh;
	size_t				 order[SMARTHOST_MAX], i, n;

	rt->fixed = 1;
	n = smtp_smarthost_order(order, &rt->shgen);
	for (i = 0; i < n; i++) {
		sh = &smtp_conf.shosts[order[i]];
		smtp_route_add_auth(rt, sh->hostname, sh->port, sh->username,
		    sh->password, (int)order[i]);
	}
}

/* The route of the domain, if there is one. */
static const struct conf_route *
smtp_route_find(const char *domain)
{
	size_t	 i;

	for (i = 0; i < smtp_conf.nroutes; i++)
		if (strcasecmp(smtp_conf.routes[i].domain, domain) == 0)
			return &smtp_conf.routes[i];
	return NULL;
}

/*
 * Routing by the recipient domain: a route, an address literal, the MX
 * hosts.  0 when hosts are ready, 1 when the MX lookup was started.
 */
static int
smtp_route_by_domain(struct smtp_route *rt)
{
	const struct conf_route	*r;
	struct smtp_job		*job = rt->job;

	rt->domain = smtp_route_domain(job);
	if ((r = smtp_route_find(rt->domain)) != NULL) {
		rt->fixed = 1;
		if (r->security != NULL &&
		    (rt->policy = tls_policy_parse(r->security)) == -1)
			rt->policy = TLS_POLICY_UNSET;	/* checked at load */
		smtp_route_add_auth(rt, r->host, r->port != 0 ? r->port :
		    smtp_conf.mx_port, r->username, r->password, -1);
		return 0;
	}
	if (rt->domain[0] == '[' || rt->sink) {
		/* user@[192.0.2.1]: the address literal is the host; with
		 * a sink the domain is only a name for the logs. */
		smtp_route_add_host(rt, rt->domain, 0, smtp_conf.mx_port);
		return 0;
	}
	log_debug("%s: MX lookup for %s", job->msgid, rt->domain);
	rt->mxq = smtp_res_query(RES_T_MX, rt->domain, smtp_route_mx_cb, rt);
	return 1;
}

/*
 * The config's route for a job without its own smarthost: the smarthosts
 * list, the smarthost, or by the domain.  1 when the MX lookup started.
 */
static int
smtp_route_config(struct smtp_route *rt)
{
	if (smtp_conf.nshosts > 0)
		smtp_route_smarthosts(rt);
	else if (smtp_conf.smarthost[0] != '\0') {
		rt->fixed = 1;
		smtp_route_add_auth(rt, smtp_conf.smarthost,
		    smtp_conf.smarthost_port, smtp_conf.smarthost_username,
		    smtp_conf.smarthost_password, -1);
	} else
		return smtp_route_by_domain(rt);
	return 0;
}

/* Pick the kind of route for the job and start on its first host. */
void
smtp_route_start(struct smtp_job *job)
{
	struct smtp_route	*rt;
	socklen_t		 len;
	int			 r = 1;

	if (smtp_conf.sink[0] != '\0' && smtp_sink_addr(&len) == NULL) {
		smtp_sink_wait(job);
		return;
	}
	rt = xcalloc(1, sizeof(*rt));
	rt->job = job;
	rt->sink = smtp_conf.sink[0] != '\0';
	job->route = rt;
	if (strncmp(job->key, "(smarthost) ", 12) == 0)
		r = smtp_route_permsg(rt, job->key + 12);
	if (r == -1)
		return;			/* the job has ended */
	if (r == 1 && smtp_route_config(rt) == 1)
		return;			/* the MX lookup is on its way */
	smtp_route_next_host(rt);
}

/* Cancel the lookups in flight (their answers are then ignored). */
void
smtp_route_free(struct smtp_route *rt)
{
	size_t	 i;

	if (rt == NULL)
		return;
	if (rt->mxq != NULL)
		smtp_res_cancel(rt->mxq);
	if (rt->aq != NULL)
		smtp_res_cancel(rt->aq);
	if (rt->aaaaq != NULL)
		smtp_res_cancel(rt->aaaaq);
	for (i = 0; i < rt->nhosts; i++) {
		free(rt->hosts[i].name);
		free(rt->hosts[i].user);
		if (rt->hosts[i].pass != NULL)
			xfreestr(rt->hosts[i].pass);
	}
	free(rt->hosts);
	free(rt->addrs);
	free(rt->addrs6);
	free(rt->domain);
	free(rt);
}
