/*
 * The answer cache: (type, lowercased name) -> answer, kept for its TTL
 * (clamped to [RESOLVER_TTL_MIN, RESOLVER_TTL_MAX]; negative answers carry
 * the SOA minimum from dns_parse).  Bounded: when full, the oldest entry
 * goes first.  A hash of chains finds an entry; a list in insertion order
 * gives the oldest.  Times come from the monotonic clock.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "proto.h"
#include "resolver.h"
#include "xmalloc.h"

#define CACHE_BUCKETS	16384	/* a power of two */

struct cache_ent {
	LIST_ENTRY(cache_ent)	 chain;
	TAILQ_ENTRY(cache_ent)	 age;
	int			 qtype;
	char			*name;
	time_t			 expires;
	struct dns_answer	 ans;
};

static LIST_HEAD(, cache_ent)	 cache_hash[CACHE_BUCKETS];
static TAILQ_HEAD(, cache_ent)	 cache_age = TAILQ_HEAD_INITIALIZER(cache_age);
static size_t			 cache_count;
static size_t			 cache_max;

static time_t
cache_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* FNV-1a over the type and the name. */
static uint32_t
cache_hash_of(int qtype, const char *name)
{
	uint32_t	 h = 2166136261u ^ (uint32_t)qtype;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h & (CACHE_BUCKETS - 1);
}

static void
cache_remove(struct cache_ent *e)
{
	LIST_REMOVE(e, chain);
	TAILQ_REMOVE(&cache_age, e, age);
	dns_answer_clear(&e->ans);
	free(e->name);
	free(e);
	cache_count--;
}

static struct cache_ent *
cache_find(int qtype, const char *name)
{
	struct cache_ent	*e;

	LIST_FOREACH(e, &cache_hash[cache_hash_of(qtype, name)], chain)
		if (e->qtype == qtype && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

void
resolver_cache_init(size_t max)
{
	size_t	 i;

	for (i = 0; i < CACHE_BUCKETS; i++)
		LIST_INIT(&cache_hash[i]);
	cache_max = max;
}

uint32_t
resolver_cache_ttl(uint32_t ttl)
{
	if (ttl < RESOLVER_TTL_MIN)
		return RESOLVER_TTL_MIN;
	if (ttl > RESOLVER_TTL_MAX)
		return RESOLVER_TTL_MAX;
	return ttl;
}

/* A copy of a live entry with the TTL left; expired ones go. */
int
resolver_cache_get(int qtype, const char *name, struct dns_answer *out)
{
	struct cache_ent	*e;
	time_t			 now = cache_now();

	if ((e = cache_find(qtype, name)) == NULL)
		return -1;
	if (e->expires <= now) {
		cache_remove(e);
		return -1;
	}
	dns_answer_copy(out, &e->ans);
	out->ttl = (uint32_t)(e->expires - now);
	return 0;
}

/* Store an answer (not a temporary failure), evicting the oldest. */
void
resolver_cache_put(int qtype, const char *name, const struct dns_answer *a)
{
	struct cache_ent	*e;

	if (a->status == RES_TEMPFAIL || cache_max == 0)
		return;
	if ((e = cache_find(qtype, name)) != NULL)
		cache_remove(e);
	while (cache_count >= cache_max)
		cache_remove(TAILQ_FIRST(&cache_age));
	e = xcalloc(1, sizeof(*e));
	e->qtype = qtype;
	e->name = xstrdup(name);
	e->expires = cache_now() + resolver_cache_ttl(a->ttl);
	dns_answer_copy(&e->ans, a);
	LIST_INSERT_HEAD(&cache_hash[cache_hash_of(qtype, name)], e, chain);
	TAILQ_INSERT_TAIL(&cache_age, e, age);
	cache_count++;
}
