/*
 * admin_cmd: the client side of the [admin] API for the commands that talk
 * to a running server (`smtpgate ban`, `smtpgate user unlock -c`): one call
 * with the token of [admin] token_file, and a refusal (401) explained in
 * plain words.
 */
#ifndef SG_CMD_ADMIN_CMD_H
#define SG_CMD_ADMIN_CMD_H

#include <stddef.h>

struct buf;
struct conf;

/* admin_call to c's [admin] address with c's token (if any). */
int admin_cmd_call(const struct conf *c, const char *method, const char *target, const char *body,
    size_t bodylen, struct buf *out, int *status_r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Why the server answered 401 and what to do, for stderr (never the token). */
void admin_cmd_explain_401(const struct conf *c, char *msg, size_t msglen);

#endif
