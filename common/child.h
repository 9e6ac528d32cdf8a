/*
 * The one entry sequence every child process follows (Postfix's
 * single_server skeleton, OpenSMTPD's queue()/ca()):
 *
 *   argv flags -> log -> event base -> read setup from the master on fd 3
 *   (config slice, listeners, peers, DONE) -> ops->configure (keep the
 *   slice, open files that need root) -> getpwnam(user) -> chroot + chdir
 *   (when ops->chroot) -> setgroups/setresgid/setresuid -> ops->run ->
 *   hand over stashed listeners and peers -> MSG_SETUP_READY -> event loop.
 *
 * When not started as root the chroot and the privilege drop are skipped
 * with one log line saying so.  A child exits when the master goes away
 * (EOF on fd 3, or PR_SET_PDEATHSIG).
 */
#ifndef MTAD_CHILD_H
#define MTAD_CHILD_H

#include <stdint.h>

struct conf;
struct chan;
struct msg;

#define CHILD_MASTER_FD	3	/* the channel to the master, at exec */

struct child_ops {
	int	 proc;			/* PROC_* */
	int	 chroot;		/* chroot to <spool-dir>/empty when root */
	/*
	 * The slice arrived; still root, not chrooted.  The callee takes
	 * ownership of the conf (keep it, or conf_free() it).
	 */
	void	(*configure)(struct conf *);
	/* Privileges dropped, event base ready: start working. */
	void	(*run)(void);
	/* A channel to a peer (at setup, or after that peer restarted). */
	void	(*peer)(int proc, uint32_t instance, int fd);
	/* A listening socket (smtpd only). */
	void	(*listener)(int fd, uint32_t flags, const char *addr);
	/* A new config after SIGHUP; the callee takes ownership. */
	void	(*reload)(struct conf *);
	/* SIGTERM: stop cleanly, then exit(0).  NULL: exit(0) at once. */
	void	(*shutdown)(void);
	/*
	 * Another message from the master (qmgr: MSG_CTL_QMGR_REQUEST).
	 * NULL: such a message is fatal.  MSG_CTL_STATS is answered by
	 * the skeleton itself from counter.h.
	 */
	void	(*control)(struct chan *, struct msg *);
};

void		 child_main(int argc, char **argv, const struct child_ops *)
		    __attribute__((noreturn));
struct chan	*child_master(void);	/* channel to the master */
uint32_t	 child_instance(void);	/* instance number among its kind */

#endif
