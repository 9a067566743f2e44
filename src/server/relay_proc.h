/*
 * relay_proc: the relay process, `smtpgate-relay` (DESIGN 2.1): the
 * scheduler and delivery (relay/scheduler.h), DKIM signing, bounces. The
 * parent starts it only when the configuration routes anything
 * (scheduler_is_configured), as [server] user when it is root, sandboxed as
 * the smtp process is but unable to accept a connection (server/sandbox.h):
 * it makes connections (deliveries, DNS, TLS), never takes one.
 *
 * It loads the configuration from the parent's copies of its files
 * (lib/vault.h), the DKIM keys among them and the admin token not, then
 * lets the copies go. A route's credentials file and token command never
 * reach it as files: the parent reads or runs them at each delivery and
 * answers on the control socket (server/tokenc.h). It learns of each new
 * message from the smtp process (CHILD_MSG_QUEUED on the channel the parent
 * hands both, server/relayc.h) and scans the queue folder when it starts
 * and every SCHEDULER_RESCAN_S, so a crash of either process loses nothing:
 * every acknowledged message is on disk.
 *
 * Its main thread reads the signals (SIGUSR1: deliver everything now,
 * SIGUSR2: rescan; `smtpgate queue flush|release` send them, reading its
 * pid in SPOOL/pid; SIGTERM, SIGINT: stop, deliveries get [limits]
 * shutdown_grace), the control socket (token answers; at the parent's
 * reload a new log file, as [relay], [route] and [dkim] need a restart; a
 * new channel) and the channel from the smtp process: a frame on it that
 * does not parse, or that is not one queue id, closes that channel (the
 * sender loses it; this process keeps delivering and rescanning).
 */
#ifndef SG_SERVER_RELAY_PROC_H
#define SG_SERVER_RELAY_PROC_H

/* Runs the relay process for the configuration at path with the control
 * socket ctl; returns its exit status (2: it cannot start). */
int relay_proc_main(const char *path, int ctl);

#endif
