/*
 * session: one SMTP connection from accept to close, on one loop thread.
 * See session.c for the states.
 */
#ifndef SG_SERVER_SESSION_H
#define SG_SERVER_SESSION_H

#include <sys/socket.h>

struct worker;

/* Takes fd (a connected socket accepted on listener index li). */
void session_accept(struct worker *w, size_t li, int fd, const struct sockaddr *sa);
/* Closes every session of w now with 421 4.3.2 (end of the shutdown grace). */
void session_close_all(struct worker *w);
/* Frees every session of w without replies (the loop has stopped). */
void session_free_all(struct worker *w);

#endif
