/*
 * The master process (mtad): owns the config, the listening sockets, the
 * socketpairs between children, the children's lives and the control
 * socket.  It never touches mail.
 */
#ifndef MTAD_MASTER_H
#define MTAD_MASTER_H

#include <sys/types.h>

#include <event.h>
#include <stdint.h>
#include <time.h>

struct conf;
struct chan;

struct child {
	int		 proc;		/* PROC_* */
	uint32_t	 instance;	/* 0..n-1 among its kind */
	pid_t		 pid;		/* 0 when not running */
	struct chan	*chan;
	int		 ready;		/* sent MSG_SETUP_READY */
	int		 ever_ready;
	unsigned	 restarts;	/* consecutive quick deaths */
	unsigned	 total_restarts;
	time_t		 started;
	struct event	 ev_restart;
	struct event	 ev_ready;	/* setup handshake timeout */
};

struct listener {
	int		 fd;
	uint32_t	 flags;		/* LISTENER_* */
	char		 addr[80];
};

struct master {
	struct conf	*conf;
	const char	*conf_path;
	char		**overrides;	/* "--key=value" as given */
	int		 noverrides;
	int		 foreground;
	int		 verbose;
	char		 libexec[4096];
	uid_t		 uid;		/* of `user`; 0 when not root */
	gid_t		 gid;
	int		 root;
	struct child	*children;
	size_t		 nchildren;
	struct listener	*listeners;
	size_t		 nlisteners;
	int		 shutting_down;
	time_t		 start_time;
};

extern struct master	*mtad;

/* master_child.c */
void	master_children_init(void);
void	master_children_start(void);
void	master_child_reaped(pid_t, int status);
void	master_children_signal(int proc_mask, int sig);
int	master_children_running(int proc_mask);
void	master_children_reload(void);

/* master_listen.c */
void	master_listen(void);
void	master_listen_close(void);

/* master_spool.c */
void	master_spool_prepare(void);
void	master_pidfile_write(void);
void	master_pidfile_remove(void);

/* master_control.c */
void	master_control_open(void);
void	master_control_close(void);
void	master_control_reply(struct chan *, uint32_t status, const char *);

/* master_request.c: requests to children for mtactl clients */
struct msg;
/* Called with the sums of every counter; missing names who did not say. */
typedef void (*master_stats_cb)(struct chan *client, const uint64_t *sums,
    const char *missing);
void	master_request_qmgr(struct chan *, const char *cmd, const char *arg,
	    uint32_t flags, uint32_t limit, uint32_t offset);
void	master_request_stats(struct chan *, master_stats_cb);
void	master_request_qmgr_reply(struct child *, struct msg *);
void	master_request_stats_reply(struct child *, struct msg *);
void	master_request_child_gone(struct child *);
void	master_request_client_gone(struct chan *);

/* mtad.c */
void	master_shutdown_step(void);
int	master_load_conf(struct conf **, char **cause);
/* Re-read the config (SIGHUP, mtactl reload): -1 with *cause if bad. */
int	master_reload(char **restart, char **cause);

#endif
