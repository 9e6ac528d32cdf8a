/*
 * The order in which one delivery tries the hosts of the smarthosts list
 * (DESIGN section 5): first the healthy primaries, drawn one after the
 * other at random in proportion to their weights (so the first choice
 * follows the weights exactly and the others are fallbacks); then the
 * healthy backups, drawn the same way; then the hosts marked down,
 * primaries first, in case every mark is stale.  Pure logic, with the
 * random source passed in, so that it is unit tested.
 */
#ifndef MTAD_SMARTHOST_ORDER_H
#define MTAD_SMARTHOST_ORDER_H

#include <stddef.h>
#include <stdint.h>

#define SMARTHOST_MAX	64	/* entries considered in the list */

struct smarthost_cand {
	int	 weight;	/* >= 1 */
	int	 backup;
	int	 down;		/* marked down, not yet due for a retry */
};

/* Uniform in [0, bound), like arc4random_uniform(). */
typedef uint32_t (*smarthost_rnd)(uint32_t bound);

/*
 * Fill order with the indexes of c[0..n-1] (n at most SMARTHOST_MAX) in
 * the order to try them; returns n.
 */
size_t	smarthost_order(const struct smarthost_cand *c, size_t n,
	    size_t *order, smarthost_rnd rnd);

#endif
