/*
 * conf_priv: what the files of src/conf/ share and nothing else sees: the
 * parse context, the row of the key table and the section kinds.
 *
 * A section kind (struct conf_section) names its keys: an array of struct
 * conf_key rows, ended by a row whose name is NULL. A row says where its value
 * goes (offsets into the object the section fills: struct conf, or one
 * struct conf_listen, conf_route or conf_dkim), its type, its default as it
 * would be written in the file, its bounds, and whether SIGHUP applies it.
 * The type's setter (conf_table.c) parses and stores the value; a key with
 * rules of its own has a custom setter in its row. conf.c looks rows up and
 * never names a key.
 */
#ifndef SG_CONF_CONF_PRIV_H
#define SG_CONF_CONF_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

struct conf_section;

struct conf_parse {
	struct conf *c;
	const char *file;
	int line; /* 0: no line (defaults, checks of the whole file) */
	char *err;
	size_t errlen;
	const struct conf_section *sec; /* NULL before the first header */
	void *obj; /* what the section's keys fill */
	const char *sec_arg; /* NAME of [listen NAME], ...: for messages; "" if none */
	unsigned seen; /* bit i: conf_table_sections[i] was opened (the once-only ones) */
	int mechanisms_line; /* [auth] mechanisms, for errors naming it */
	size_t nkeys_cert, nkeys_key; /* [tls] cert and key lines so far */
	unsigned without; /* CONF_WITHOUT_*: secrets not read */
};

/* Writes "file:line: message" (or "file: message" without a line) to p->err. */
void conf_error(struct conf_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum conf_type {
	CONF_T_STRING, /* char *: the value as written */
	CONF_T_PATH, /* char *: resolved against the config file's folder */
	CONF_T_BOOL, /* bool: one of words */
	CONF_T_ENUM, /* an enum (int-sized): one of words */
	CONF_T_UINT, /* unsigned from lo to hi, or one of words */
	CONF_T_INT, /* int from lo to hi, or one of words */
	CONF_T_DURATION, /* unsigned seconds from lo to hi (conf_parse_duration) */
	CONF_T_SIZE, /* uint64_t bytes, at least lo (conf_parse_size) */
	CONF_T_ADDRESS, /* char * (off), struct sockaddr_storage (off2), socklen_t (off3) */
	CONF_T_LIST, /* char ** (off) and size_t (off2): words split on white space and ',' */
	CONF_T_CIDRS, /* struct conf_cidr * (off) and size_t (off2) */
};

/* When a changed value takes effect. */
enum conf_apply {
	CONF_RELOAD, /* at SIGHUP, for new sessions */
	CONF_RESTART, /* at the next start only */
};

/* A word a BOOL, ENUM, UINT or INT key accepts, and the value it stands for. */
struct conf_word {
	const char *word; /* compared without ASCII case */
	int value;
	bool alias; /* accepted, but not named in the error message */
};

/* conf_key.flags */
#define CONF_KEY_UPPER 0x01 /* LIST: upper-case the words (else lower-case) */
#define CONF_KEY_EMPTY_OK 0x02 /* an empty value is a value (an empty list) */
#define CONF_KEY_SEEN 0x04 /* set the bool at seen_off when the file gives the key */
#define CONF_KEY_LINE 0x08 /* set the int at line_off to the key's line */
/* def is what the user of the value applies when the field is left unset
 * (NULL or 0): documented here, never stored by conf */
#define CONF_KEY_DEF_BY_USER 0x10

struct conf_key;

/* Parses v and stores it into obj. 0, or -1 after conf_error(). */
typedef int conf_set_fn(struct conf_parse *p, const struct conf_key *k, void *obj, const char *v);

/* The first fields of a row: {CONF_KEY("errors", CONF_T_UINT, "10", CONF_RELOAD), .off = ...} */
#define CONF_KEY(name_, type_, def_, apply_)                                                       \
	.name = (name_), .type = (type_), .def = (def_), .apply = (apply_)

struct conf_key {
	const char *name;
	enum conf_type type;
	const char *def; /* the default as written in the file; NULL: none (unset) */
	enum conf_apply apply;
	size_t off, off2, off3; /* the fields of obj (off2, off3: see enum conf_type) */
	unsigned flags;
	unsigned long long lo, hi; /* bounds of UINT, INT, DURATION; SIZE: lo */
	const struct conf_word *words; /* ended by a NULL word */
	const char *eg; /* DURATION, SIZE: the examples their error message gives */
	size_t seen_off, line_off; /* with CONF_KEY_SEEN, CONF_KEY_LINE */
	conf_set_fn *set; /* NULL: the type's setter */
};

/* What kinds of name a section header takes. */
enum conf_section_arg {
	CONF_SEC_ONCE, /* [NAME], at most once; its keys fill struct conf */
	CONF_SEC_NAMED, /* [NAME ARG] or [NAME], its open() decides */
};

struct conf_section {
	const char *name;
	enum conf_section_arg arg;
	const struct conf_key *keys;
	/* CONF_SEC_NAMED: checks arg, makes the object and sets p->obj and
	 * p->sec_arg. CONF_SEC_ONCE: optional, after the header is accepted. */
	int (*open)(struct conf_parse *p, const char *name, const char *arg);
	bool defaults_at_open; /* CONF_SEC_ONCE: the defaults apply only with the section */
};

/* conf_table.c: the section kinds, ended by a NULL name. */
extern const struct conf_section conf_table_sections[];

const struct conf_section *conf_table_section(const char *name);
const struct conf_key *conf_table_key(const struct conf_section *sec, const char *name);
/* Sets the key from the file: the setter, then the row's seen flag and line. */
int conf_table_set(struct conf_parse *p, const struct conf_key *k, const char *v)
    __attribute__((warn_unused_result));
/* Stores the defaults of keys into obj (p->line 0): at load for the
 * once-only sections, when a section object is made for the others. */
void conf_table_defaults(struct conf_parse *p, const struct conf_key *keys, void *obj);
/* Calls cb for every row of every section kind, in table order (tests). */
void conf_table_each(
    void (*cb)(const struct conf_section *sec, const struct conf_key *k, void *arg), void *arg);
/* Replaces *arr with the words of v (upper- or lower-cased). */
void conf_table_list_set(char ***arr, size_t *n, const char *v, bool upper);

/* starttls, implicit, none: [listen] and [relay] tls */
extern const struct conf_word conf_table_tls_modes[];

/* The type setters a custom setter may build on. */
conf_set_fn conf_table_set_string, conf_table_set_path, conf_table_set_list;

/* conf_relay.c: [relay] and [route DOMAIN]. */
extern const struct conf_key conf_route_keys[];
int conf_route_open_relay(struct conf_parse *p, const char *name, const char *arg)
    __attribute__((warn_unused_result));
int conf_route_open_domain(struct conf_parse *p, const char *name, const char *arg)
    __attribute__((warn_unused_result));
void conf_route_free(struct conf_route *r);
/* 0, or -1 with the message (without file:line) in msg. */
int conf_route_validate(struct conf_route *r, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/* conf_dkim.c: [dkim DOMAIN]. */
extern const struct conf_key conf_dkim_keys[];
int conf_dkim_open(struct conf_parse *p, const char *name, const char *arg)
    __attribute__((warn_unused_result));
void conf_dkim_free(struct conf_dkim *d);
/* Loads the key; *line_r is the line its message is about. 0, or -1 with
 * the message (without file:line) in msg. */
int conf_dkim_validate(struct conf_dkim *d, bool load_key, int *line_r, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/* conf_admin.c: [admin]. */
extern const struct conf_key conf_admin_keys[];
int conf_admin_open(struct conf_parse *p, const char *name, const char *arg)
    __attribute__((warn_unused_result));
/* Reads the token of [admin] token_file into c->admin_token. 0 / -1. */
int conf_admin_token_load(struct conf_parse *p) __attribute__((warn_unused_result));
/* Reads the secret file path (what: "[admin] token_file", for the errors)
 * into buf, at most cap bytes (*len_r; a longer file fills buf): a regular
 * file of mode 0600 or stricter. 0, or -1 after conf_error(). The caller
 * wipes buf. */
int conf_secret_read(struct conf_parse *p, const char *what, const char *path, char *buf,
    size_t cap, size_t *len_r) __attribute__((warn_unused_result));

/* conf_sql.c: [sql]. */
extern const struct conf_key conf_sql_keys[];
int conf_sql_open(struct conf_parse *p, const char *name, const char *arg)
    __attribute__((warn_unused_result));
/* [sql] against [auth] backend, and the query's parameters. 0 / -1. */
int conf_sql_validate(struct conf_parse *p) __attribute__((warn_unused_result));

/* conf_cluster.c: [cluster]. */
extern const struct conf_key conf_cluster_keys[];
int conf_cluster_open(struct conf_parse *p, const char *name, const char *arg)
    __attribute__((warn_unused_result));
/* The node name's default and the password file, once the file is read. */
int conf_cluster_validate(struct conf_parse *p) __attribute__((warn_unused_result));
void conf_cluster_free(struct conf *c);

#endif
