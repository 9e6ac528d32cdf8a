/*
 * A chained hash table from byte-string keys to objects.  The key bytes
 * belong to the stored object (a message id, a queue key, a job id), so an
 * entry only points at them.  The table doubles when it is as full as it
 * has buckets, which keeps lookups O(1) with 100,000 queued messages.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

#define TABLE_MIN_BUCKETS	64

struct qmgr_tentry {
	struct qmgr_tentry	*next;
	uint64_t		 hash;
	const void		*key;
	size_t			 keylen;
	void			*value;
};

/*
 * FNV-1a from a random start, with a final mix for the low bits the
 * bucket mask keeps.  Queue keys are recipient domains that clients and
 * the RabbitMQ outbox choose: a fixed hash would let them pick domains
 * that all land in one chain.
 */
static uint64_t	 table_seed;

static uint64_t
table_hash(const void *key, size_t len)
{
	const uint8_t	*p = key;
	uint64_t	 h = table_seed;

	while (len-- > 0) {
		h ^= *p++;
		h *= UINT64_C(1099511628211);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}

void
qmgr_table_init(struct qmgr_table *t)
{
	while (table_seed == 0)
		arc4random_buf(&table_seed, sizeof(table_seed));
	t->nbuckets = TABLE_MIN_BUCKETS;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	t->count = 0;
}

/* Rehash every entry into twice as many buckets. */
static void
table_grow(struct qmgr_table *t)
{
	struct qmgr_tentry	**nb, *e, *next;
	size_t			  n = t->nbuckets * 2, i;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

static struct qmgr_tentry **
table_find(struct qmgr_table *t, const void *key, size_t len, uint64_t h)
{
	struct qmgr_tentry	**ep;

	for (ep = &t->buckets[h & (t->nbuckets - 1)]; *ep != NULL;
	    ep = &(*ep)->next) {
		if ((*ep)->hash == h && (*ep)->keylen == len &&
		    memcmp((*ep)->key, key, len) == 0)
			return ep;
	}
	return ep;
}

void *
qmgr_table_get(struct qmgr_table *t, const void *key, size_t len)
{
	struct qmgr_tentry	*e;

	e = *table_find(t, key, len, table_hash(key, len));
	return e != NULL ? e->value : NULL;
}

/* Insert; a key already present is a bug in the caller. */
void
qmgr_table_put(struct qmgr_table *t, const void *key, size_t len,
    void *value)
{
	struct qmgr_tentry	**ep, *e;
	uint64_t		  h = table_hash(key, len);

	if (t->count >= t->nbuckets)
		table_grow(t);
	ep = table_find(t, key, len, h);
	if (*ep != NULL)
		log_panic("%s: duplicate key", __func__);
	e = xmalloc(sizeof(*e));
	e->next = NULL;
	e->hash = h;
	e->key = key;
	e->keylen = len;
	e->value = value;
	*ep = e;
	t->count++;
}

void *
qmgr_table_del(struct qmgr_table *t, const void *key, size_t len)
{
	struct qmgr_tentry	**ep, *e;
	void			 *value;

	ep = table_find(t, key, len, table_hash(key, len));
	if ((e = *ep) == NULL)
		return NULL;
	*ep = e->next;
	value = e->value;
	free(e);
	t->count--;
	return value;
}

void
qmgr_titer_init(struct qmgr_table *t, struct qmgr_titer *it)
{
	it->bucket = 0;
	it->next = t->nbuckets > 0 ? t->buckets[0] : NULL;
}

/* The next object, or NULL at the end; no insertion while iterating. */
void *
qmgr_titer_next(struct qmgr_table *t, struct qmgr_titer *it)
{
	struct qmgr_tentry	*e;

	while (it->next == NULL) {
		if (++it->bucket >= t->nbuckets)
			return NULL;
		it->next = t->buckets[it->bucket];
	}
	e = it->next;
	it->next = e->next;
	return e->value;
}
