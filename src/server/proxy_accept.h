/*
 * proxy_accept: the PROXY protocol step of a listener with proxy_protocol =
 * yes ([listen] in smtpgate.conf(5)), between accept and the session: the
 * peer must be in proxy_from, and its header (net/proxy_proto.h) comes
 * before anything else, within a few seconds; then session_start runs with
 * the client address the header names.
 */
#ifndef SG_SERVER_PROXY_ACCEPT_H
#define SG_SERVER_PROXY_ACCEPT_H

#include <stddef.h>
#include <sys/socket.h>

struct server_snap;
struct worker;

#define PROXY_ACCEPT_TIMEOUT_S 5 /* at most; less when [limits] timeout_command is */

/* Takes fd (accepted on listener li, from sa) and the reference to snap. */
void proxy_accept_start(
    struct worker *w, struct server_snap *snap, size_t li, int fd, const struct sockaddr *sa);
/* Closes every connection of w still waiting for its header, silently
 * (shutdown, or the loop has stopped). */
void proxy_accept_close_all(struct worker *w);

#endif
