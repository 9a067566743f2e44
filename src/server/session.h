/*
 * session: one SMTP connection from accept to close, on one loop thread.
 * See session.c for the states.
 */
#ifndef SG_SERVER_SESSION_H
#define SG_SERVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct worker;

struct server_snap;

/* Starts the session of fd for the client sa: limits and bans, "connect",
 * then the greeting (or the TLS handshake). proxy is the balancer that sent
 * a PROXY header, NULL when none. Takes fd and the reference to snap. */
void session_start(struct worker *w, struct server_snap *snap, size_t li, int fd,
    const struct sockaddr *sa, const struct sockaddr *proxy);
/* Closes every session of w now with 421 4.3.2 (end of the shutdown grace). */
void session_close_all(struct worker *w);
/* Frees every session of w without replies (the loop has stopped). */
void session_free_all(struct worker *w);

/* For tests (tests/fuzz/fuzz_session.c): whether a session of w that waits
 * for nothing (not busy, not closing, past the TLS handshake) still holds
 * input it could act on: a whole line in the command or AUTH state, more
 * than one line's worth, or bytes of a BDAT chunk. Such a session would
 * wait for the client, who waits for it. */
bool session_has_stalled_input(struct worker *w);

#endif
