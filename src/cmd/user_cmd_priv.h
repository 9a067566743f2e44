/*
 * user_cmd_priv: what the files of `smtpgate user` share: the parsed
 * command line, the exit statuses, the passwd-file helpers of user_cmd.c
 * and each file's subcommands for the table in user_cmd.c. Nothing outside
 * src/cmd/user_*cmd.c includes it.
 */
#ifndef SG_CMD_USER_CMD_PRIV_H
#define SG_CMD_USER_CMD_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/pwscheme.h"

#define USER_CMD_OK 0
#define USER_CMD_FAILED 1
#define USER_CMD_USAGE 2

struct buf;
struct passwd_entry;
struct passwd_file;

struct user_cmd_opts {
	const char *file;
	const char *config; /* unlock -c: also end a sending-quota hold */
	const char *user;
	const char *label;
	const char *expires; /* app-password add --expires, as given */
	char **args; /* the words after USER (app-password: LABEL; senders: PATTERNs) */
	int nargs;
	bool password_stdin;
	bool json;
	bool scheme_given;
	enum pwscheme scheme;
};

/* user_cmd.c */

/* "smtpgate user: " and the message on stderr. */
void user_cmd_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Locks the folder of the file for a read-modify-write (released at exit
 * or on close): the descriptor, or -1 after a message. */
int user_cmd_lock_dir(const char *file);
/* o->file parsed, or NULL after a message. */
struct passwd_file *user_cmd_load(const struct user_cmd_opts *o, bool missing_ok);
/* Writes pf atomically: an exit status. */
int user_cmd_save(const struct passwd_file *pf);
/* A credential line of user (and with label NULL, any label). */
bool user_cmd_entry_matches(const struct passwd_entry *e, const char *user, const char *label);
/* A unix time as given in the file ("created", "expires") as
 * YYYY-MM-DDTHH:MM:SSZ into out; NULL: "-". */
void user_cmd_format_time(const char *unix_time, char *out, size_t outlen);
/* del USER [--label NAME], and app-password del. */
int user_cmd_del(const struct user_cmd_opts *o);

/* user_password_cmd.c */

int user_password_cmd_add(const struct user_cmd_opts *o);
int user_password_cmd_passwd(const struct user_cmd_opts *o);
int user_password_cmd_verify(const struct user_cmd_opts *o);
/* hash [--scheme S] [--password-stdin]: prints the credential string. */
int user_password_cmd_print_hash(const struct user_cmd_opts *o);
/* pw hashed with the scheme of o into cred ("{S}data"), and by default
 * SCRAM-SHA-1 keys into scram1, sharing the salt of the user's other SCRAM
 * credentials in pf (skip excepted; pf NULL: none). -1 after a message. */
int user_password_cmd_hash(const struct user_cmd_opts *o, const struct passwd_file *pf,
    const struct passwd_entry *skip, const struct buf *pw, struct buf *cred, struct buf *scram1);
/* Sets scram1= (or removes it) and created=now on e. -1 after a message. */
int user_password_cmd_stamp(struct passwd_entry *e, const struct buf *scram1);

/* user_app_cmd.c */

/* app-password add|del USER LABEL */
int user_app_cmd_run(const struct user_cmd_opts *o);

/* user_list_cmd.c */

int user_list_cmd_run(const struct user_cmd_opts *o);

#endif
