/*
 * The nameservers the resolver asks, in order: resolver-nameservers from
 * the config ("ip", "ip:port", "[ipv6]:port"), or else the "nameserver"
 * lines of /etc/resolv.conf, read at configure time because the process
 * runs chrooted afterwards.  With neither, 127.0.0.1 as libc would.
 */
#include <sys/socket.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hostport.h"
#include "log.h"
#include "resolver.h"
#include "xmalloc.h"

#define RESOLV_CONF	"/etc/resolv.conf"
#define RESOLVER_NS_MAX	16

static struct resolver_ns	*ns_list;
static size_t			 ns_count;
static struct resolver_ns	*ns_system;	/* from resolv.conf */
static size_t			 ns_system_count;

/* Append one server; -1 when the text is not a numeric address. */
static int
resolver_ns_add(struct resolver_ns **list, size_t *n, const char *text)
{
	struct resolver_ns	 ns;

	if (*n >= RESOLVER_NS_MAX)
		return 0;
	memset(&ns, 0, sizeof(ns));
	if (hostport_parse(text, 53, &ns.ss, &ns.sslen) == -1)
		return -1;
	ns.text = xstrdup(text);
	*list = xreallocarray(*list, *n + 1, sizeof(**list));
	(*list)[(*n)++] = ns;
	return 0;
}

static void
resolver_ns_free(struct resolver_ns *list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(list[i].text);
	free(list);
}

/* The "nameserver ADDR" lines of resolv.conf; unusable ones are skipped. */
static void
resolver_ns_system(void)
{
	FILE	*f;
	char	 line[512], *p, *addr;

	if ((f = fopen(RESOLV_CONF, "r")) == NULL) {
		log_warn("%s", RESOLV_CONF);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) != 0 ||
		    !isspace((unsigned char)p[10]))
			continue;
		addr = p + 10 + strspn(p + 10, " \t");
		addr[strcspn(addr, " \t\r\n#;")] = '\0';
		if (resolver_ns_add(&ns_system, &ns_system_count, addr) == -1)
			log_warnx("%s: nameserver %s not usable", RESOLV_CONF,
			    addr);
	}
	fclose(f);
	if (ns_system_count == 0) {
		log_warnx("no nameserver in %s: using 127.0.0.1",
		    RESOLV_CONF);
		resolver_ns_add(&ns_system, &ns_system_count, "127.0.0.1");
	}
}

/* Build the active list from the config, else from the system's. */
static void
resolver_ns_load(const struct conf *conf)
{
	const struct conf_strlist	*l = &conf->resolver_nameservers;
	size_t				 i;

	resolver_ns_free(ns_list, ns_count);
	ns_list = NULL;
	ns_count = 0;
	for (i = 0; i < l->n; i++)
		if (resolver_ns_add(&ns_list, &ns_count, l->v[i]) == -1)
			fatalx("resolver-nameservers: bad address %s",
			    l->v[i]);
	if (ns_count == 0)
		for (i = 0; i < ns_system_count; i++)
			resolver_ns_add(&ns_list, &ns_count,
			    ns_system[i].text);
	for (i = 0; i < ns_count; i++)
		log_debug("nameserver %s", ns_list[i].text);
}

/* At configure time, before the chroot: resolv.conf is still there. */
void
resolver_ns_configure(const struct conf *conf)
{
	if (conf->resolver_nameservers.n == 0)
		resolver_ns_system();
	resolver_ns_load(conf);
}

void
resolver_ns_reload(const struct conf *conf)
{
	/* resolv.conf is out of reach in the chroot: keep what was read. */
	if (conf->resolver_nameservers.n == 0 && ns_system_count == 0)
		log_warnx("resolver-nameservers emptied: needs a restart to "
		    "read %s; keeping the current servers", RESOLV_CONF);
	else
		resolver_ns_load(conf);
}

size_t
resolver_ns_count(void)
{
	return ns_count;
}

const struct resolver_ns *
resolver_ns_get(size_t i)
{
	return &ns_list[i];
}
