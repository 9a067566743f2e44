/*
 * cmd: entry points of the subcommands. Each gets argv with its own name in
 * argv[0] and returns the exit status (0, 1 or 2; DESIGN 5.1).
 */
#ifndef SG_CMD_CMD_H
#define SG_CMD_CMD_H

#define SMTPGATE_VERSION "0.1.0"

int serve_main(int argc, char **argv);
int user_main(int argc, char **argv);
int queue_cmd_main(int argc, char **argv);
int ban_main(int argc, char **argv);
int probe_main(int argc, char **argv);
int dns_main(int argc, char **argv);
int audit_main(int argc, char **argv);
int init_main(int argc, char **argv);

#endif
