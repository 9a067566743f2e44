/*
 * tokenc: the token commands of relay routes (relay/creds.h) from the
 * smtp process, which may start no program (server/sandbox.h): the command
 * runs in the parent (server/parent.h), which finds it in its own copy of
 * the route's credentials file, so this process can only ask for the
 * commands the administrator configured, never name one. A delivery thread
 * asks over the control socket and waits for the answer (at most
 * CREDS_COMMAND_TIMEOUT and a margin), which the main thread hands over.
 */
#ifndef SG_SERVER_TOKENC_H
#define SG_SERVER_TOKENC_H

#include "net/ipc_frame.h"

/* Runs the relay's token commands through the parent on ctl. */
void tokenc_start(int ctl);
/* On the main thread: an answer frame (CHILD_MSG_TOKEN_ANSWER). */
void tokenc_answer(const struct ipc_frame *f);
/* Every waiting request fails (the parent is gone); later ones too. */
void tokenc_stop(void);

#endif
