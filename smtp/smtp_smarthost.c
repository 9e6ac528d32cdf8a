/*
 * Health of the smarthosts list, as this worker has seen it.  A host that
 * fails to connect or to greet (4xx/5xx, timeout, lost connection) is
 * marked down for SMTP_DOWN_TIME seconds: deliveries try the other hosts
 * first (smarthost_order.h), then, when its time is up, it is a
 * candidate like any other again.  Each worker learns on its own; with
 * several workers a dead host costs each of them one failed connect per
 * period, which is cheap and needs no shared state.
 *
 * A reload makes a new list: the marks are dropped and the generation
 * goes up, so that a route still working with the old list cannot mark
 * an entry of the new one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "smarthost_order.h"
#include "smtp.h"

static time_t	 sh_down[SMARTHOST_MAX];	/* 0: up, else until */
static unsigned	 sh_gen;

static time_t
smtp_smarthost_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static uint32_t
smtp_smarthost_rnd(uint32_t bound)
{
	return arc4random_uniform(bound);
}

void
smtp_smarthost_reset(void)
{
	memset(sh_down, 0, sizeof(sh_down));
	sh_gen++;
}

size_t
smtp_smarthost_order(size_t *order, unsigned *gen)
{
	struct smarthost_cand	 c[SMARTHOST_MAX];
	time_t			 now = smtp_smarthost_now();
	size_t			 i, n = smtp_conf.nshosts;

	if (n > SMARTHOST_MAX)
		n = SMARTHOST_MAX;
	for (i = 0; i < n; i++) {
		c[i].weight = smtp_conf.shosts[i].weight;
		c[i].backup = smtp_conf.shosts[i].backup;
		if (sh_down[i] != 0 && sh_down[i] <= now) {
			log_info("smarthost %s:%d: retrying after its down "
			    "time", smtp_conf.shosts[i].hostname,
			    smtp_conf.shosts[i].port);
			sh_down[i] = 0;
		}
		c[i].down = sh_down[i] != 0;
	}
	*gen = sh_gen;
	return smarthost_order(c, n, order, smtp_smarthost_rnd);
}

void
smtp_smarthost_down(size_t idx, unsigned gen, const char *why)
{
	if (gen != sh_gen || idx >= SMARTHOST_MAX || idx >= smtp_conf.nshosts)
		return;
	if (sh_down[idx] == 0)
		log_info("smarthost %s:%d marked down for %ds: %s",
		    smtp_conf.shosts[idx].hostname, smtp_conf.shosts[idx].port,
		    SMTP_DOWN_TIME, why);
	sh_down[idx] = smtp_smarthost_now() + SMTP_DOWN_TIME;
}
