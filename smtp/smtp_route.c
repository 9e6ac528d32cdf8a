/*
 * The next hop of a job, in order of precedence (DESIGN section 5):
 *
 *   1. a per-message smarthost: the queue key "(smarthost) HOST:PORT";
 *   2. the global smarthost (smarthost, smarthost-port);
 *   3. the MX hosts of the recipient domain (the queue key), lowest
 *      preference first, ties shuffled (RFC 5321 5.1); no MX (NODATA)
 *      means the domain itself; a null MX (RFC 7505) fails the mail.
 *
 * A host that is an IP literal is used as is; others are resolved to A
 * and AAAA (both asked at once, IPv4 tried first).  Each address is tried
 * in turn: an idle connection to it is reused when there is one, else a
 * new one is opened.  Failures before a transaction (no connection, a
 * 4xx/5xx greeting, a refused EHLO/HELO) move on to the next address,
 * then the next host.  When none is left the job ends with the last
 * error: deferred if any failure along the way was temporary, failed if
 * every one was permanent.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns_parse.h"
#include "hostport.h"
#include "log.h"
#include "proto.h"
#include "smtp.h"
#include "xmalloc.h"

#define ROUTE_ADDRS_MAX	10	/* addresses tried per host */
#define ROUTE_HOSTS_MAX	20	/* MX hosts tried per job */

struct smtp_host {
	char		*name;
	uint32_t	 pref;
};

struct smtp_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
};

struct smtp_route {
	struct smtp_job		*job;
	int			 port;
	int			 smarthost;	/* name failures are soft */
	char			*domain;

	struct smtp_host	*hosts;
	size_t			 nhosts, hnext;
	struct smtp_addr	*addrs;		/* of hosts[hnext - 1] */
	size_t			 naddrs, anext;
	struct smtp_addr	*addrs6;	/* AAAA, while collecting */
	size_t			 naddrs6;

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

/*
 * Add a host to try.  "[name]" and "[IPv6:addr]" (an address literal,
 * RFC 5321 4.1.3) lose their decoration: brackets only say "no MX".
 */
static void
smtp_route_add_host(struct smtp_route *rt, const char *name, uint32_t pref)
{
	size_t	 len = strlen(name);

	if (rt->nhosts >= ROUTE_HOSTS_MAX)
		return;
	rt->hosts = xreallocarray(rt->hosts, rt->nhosts + 1,
	    sizeof(*rt->hosts));
	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len > 5 && strncasecmp(name, "IPv6:", 5) == 0) {
			name += 5;
			len -= 5;
		}
		rt->hosts[rt->nhosts].name = xstrndup(name, len);
	} else
		rt->hosts[rt->nhosts].name = xstrdup(name);
	rt->hosts[rt->nhosts].pref = pref;
	rt->nhosts++;
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

/* Try the addresses of the current host; then the next host. */
static void
smtp_route_next_addr(struct smtp_route *rt)
{
	struct smtp_job		*job = rt->job;
	struct smtp_addr	*a;
	const char		*host = rt->hosts[rt->hnext - 1].name;
	char			 why[SMTP_TEXT_MAX];

	while (rt->anext < rt->naddrs) {
		a = &rt->addrs[rt->anext++];
		if (smtp_session_reuse(job, (struct sockaddr *)&a->ss,
		    host) == 0)
			return;
		if (smtp_session_open(job, host, (struct sockaddr *)&a->ss,
		    a->len, why, sizeof(why)) == 0)
			return;
		smtp_route_error(rt, 1, 0, "4.4.1", why);
	}
	smtp_route_next_host(rt);
}

/* Called by the session: this address failed before MAIL; next. */
void
smtp_route_failed(struct smtp_job *job, int soft, int code, const char *dsn,
    const char *text)
{
	struct smtp_route	*rt = job->route;

	smtp_route_error(rt, soft, code, dsn, text);
	smtp_route_next_addr(rt);
}

/* The reused connection was dead: the same address, a new connection. */
void
smtp_route_retry(struct smtp_job *job)
{
	struct smtp_route	*rt = job->route;
	struct smtp_addr	*a = &rt->addrs[rt->anext - 1];
	char			 why[SMTP_TEXT_MAX];

	if (smtp_session_open(job, rt->hosts[rt->hnext - 1].name,
	    (struct sockaddr *)&a->ss, a->len, why, sizeof(why)) == 0)
		return;
	smtp_route_error(rt, 1, 0, "4.4.1", why);
	smtp_route_next_addr(rt);
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
	if (rt->astatus == RES_TEMPFAIL || rt->aaaastatus == RES_TEMPFAIL) {
		snprintf(text, sizeof(text), "Host or domain name not found. "
		    "Name service error for name=%s type=A: Host not found, "
		    "try again", host);
		smtp_route_error(rt, 1, 0, "4.4.3", text);
	} else {
		snprintf(text, sizeof(text), "Host or domain name not found. "
		    "Name service error for name=%s type=A: Host not found",
		    host);
		/* A mistyped smarthost must not bounce all mail. */
		smtp_route_error(rt, rt->smarthost, 0,
		    rt->smarthost ? "4.4.4" : "5.4.4", text);
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
	size_t			 i;

	for (i = 0; a->status == RES_OK && i < a->n; i++) {
		if (hostport_ip(a->v[i].value, rt->port, &ss, &len) == -1 ||
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

/* On to the next host: an IP literal at once, a name through the DNS. */
static void
smtp_route_next_host(struct smtp_route *rt)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	const char		*name;

	if (rt->hnext >= rt->nhosts) {
		smtp_route_exhausted(rt);
		return;
	}
	name = rt->hosts[rt->hnext++].name;
	free(rt->addrs);
	rt->addrs = NULL;
	rt->naddrs = rt->anext = 0;
	if (hostport_ip(name, rt->port, &ss, &len) == 0) {
		smtp_route_add_addr(&rt->addrs, &rt->naddrs, &ss, len);
		smtp_route_next_addr(rt);
		return;
	}
	log_debug("%s: resolving %s", rt->job->msgid, name);
	rt->aq = smtp_res_query(RES_T_A, name, smtp_route_a_cb, rt);
	rt->aaaaq = smtp_res_query(RES_T_AAAA, name, smtp_route_aaaa_cb, rt);
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
		if (a->n == 1 && strcmp(a->v[0].value, ".") == 0) {
			snprintf(text, sizeof(text), "Domain %s does not "
			    "accept mail (nullMX)", rt->domain);
			smtp_route_end(rt, RCPT_FAILED, 0, "5.1.10", text);
			return;
		}
		for (i = 0; i < a->n; i++)
			if (strcmp(a->v[i].value, ".") != 0)
				smtp_route_add_host(rt, a->v[i].value,
				    a->v[i].pref);
		smtp_route_shuffle(rt);
		break;
	case RES_NODATA:
		smtp_route_add_host(rt, rt->domain, 0);
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

/* Pick the kind of route for the job and start on its first host. */
void
smtp_route_start(struct smtp_job *job)
{
	struct smtp_route	*rt;
	char			*host;
	int			 port;

	rt = xcalloc(1, sizeof(*rt));
	rt->job = job;
	job->route = rt;
	if (strncmp(job->key, "(smarthost) ", 12) == 0 &&
	    smtp_route_split(job->key + 12, &host, &port) == 0) {
		rt->smarthost = 1;
		rt->port = port;
		smtp_route_add_host(rt, host, 0);
		free(host);
	} else if (smtp_conf.smarthost[0] != '\0') {
		rt->smarthost = 1;
		rt->port = smtp_conf.smarthost_port;
		smtp_route_add_host(rt, smtp_conf.smarthost, 0);
	} else {
		rt->port = 25;
		rt->domain = smtp_route_domain(job);
		if (rt->domain[0] == '[') {
			/* user@[192.0.2.1]: the address literal is the host */
			smtp_route_add_host(rt, rt->domain, 0);
		} else {
			log_debug("%s: MX lookup for %s", job->msgid,
			    rt->domain);
			rt->mxq = smtp_res_query(RES_T_MX, rt->domain,
			    smtp_route_mx_cb, rt);
			return;
		}
	}
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
	for (i = 0; i < rt->nhosts; i++)
		free(rt->hosts[i].name);
	free(rt->hosts);
	free(rt->addrs);
	free(rt->addrs6);
	free(rt->domain);
	free(rt);
}
