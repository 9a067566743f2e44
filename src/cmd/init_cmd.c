/*
 * init_cmd: `smtpgate init DIR --hostname NAME [--cert FILE --key FILE]
 * [--listen ADDR] [--submission-port N] [--smtps-port N]`: a first
 * configuration in DIR that `smtpgate serve --check` accepts as written:
 *
 *   DIR/smtpgate.conf  commented; submission (STARTTLS) and submissions
 *                      (implicit TLS) listeners, spool and log inside DIR
 *   DIR/users          an empty passwd file, mode 0600
 *   DIR/cert.pem       without --cert/--key: a self-signed certificate for
 *   DIR/key.pem        NAME (init_cert.h), the key mode 0600
 *
 * It never replaces a file: every target is checked before anything is
 * written, and each is created with O_EXCL, so a file that appears
 * meanwhile is not overwritten either. A failure removes what this run
 * created. Then it prints the three commands that come next.
 *
 * Exit status: 0 written, 1 a write failed, 2 usage error or a file that
 * exists already.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/init_cert.h"
#include "dns/dns_name.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define INIT_CMD_FILES 4

struct init_cmd_opts {
	const char *dir;
	const char *hostname;
	const char *cert; /* given with --cert, made absolute */
	const char *key;
	const char *listen;
	long submission_port;
	long smtps_port;
};

/* One file to write: path under DIR, mode, contents. */
struct init_cmd_file {
	char *path;
	mode_t mode;
	const char *data;
	bool created;
};

static void
init_cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate init DIR --hostname NAME [--cert FILE --key FILE]\n"
	    "                     [--listen ADDR] [--submission-port N] [--smtps-port N]\n"
	    "\n"
	    "Writes a first configuration into DIR (created if missing): smtpgate.conf\n"
	    "(commented; a submission listener with STARTTLS and one with implicit TLS,\n"
	    "AUTH required, spool and log inside DIR), an empty passwd file DIR/users\n"
	    "(mode 0600) and, without --cert/--key, a self-signed certificate for NAME\n"
	    "(DIR/cert.pem, key DIR/key.pem mode 0600, ECDSA P-256, valid 825 days) to\n"
	    "replace with one from a CA. Existing files are never overwritten. Then it\n"
	    "prints the next commands: add a user, check, run.\n"
	    "\n"
	    "  -n, --hostname NAME        the server's host name ([server] hostname and\n"
	    "                             the certificate's name)\n"
	    "      --cert FILE            use this certificate chain (leaf first) ...\n"
	    "      --key FILE             ... and this key instead of a self-signed pair\n"
	    "      --listen ADDR          listen on this address (default *: every IPv4\n"
	    "                             address; e.g. 127.0.0.1 or [::1])\n"
	    "      --submission-port N    STARTTLS listener port (default 587)\n"
	    "      --smtps-port N         implicit-TLS listener port (default 465)\n"
	    "  -h, --help                 this text\n"
	    "\n"
	    "Exit status: 0 written, 1 a write failed, 2 usage error or a file that\n"
	    "exists already.\n");
}

static long
init_cmd_port(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
		return -1;
	return v;
}

/* A host name for a certificate and EHLO: LDH labels, no '_' (which
 * dns_name_is_valid allows for service names). */
static bool
init_cmd_hostname_is_valid(const char *s)
{
	return dns_name_is_valid(s) && strchr(s, '_') == NULL;
}

static int
init_cmd_parse(int argc, char **argv, struct init_cmd_opts *o)
{
	static const struct option longopts[] = {
	    {"hostname", required_argument, NULL, 'n'},
	    {"cert", required_argument, NULL, 'C'},
	    {"key", required_argument, NULL, 'K'},
	    {"listen", required_argument, NULL, 'L'},
	    {"submission-port", required_argument, NULL, 'S'},
	    {"smtps-port", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->listen = "*";
	o->submission_port = 587;
	o->smtps_port = 465;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o->hostname = optarg;
			break;
		case 'C':
			o->cert = optarg;
			break;
		case 'K':
			o->key = optarg;
			break;
		case 'L':
			o->listen = optarg;
			break;
		case 'S':
		case 'T':
			if (init_cmd_port(optarg) == -1) {
				fprintf(stderr, "smtpgate init: bad port \"%s\"\n", optarg);
				return 2;
			}
			*(ch == 'S' ? &o->submission_port : &o->smtps_port) = init_cmd_port(optarg);
			break;
		case 'h':
			init_cmd_usage(stdout);
			return 0;
		default:
			init_cmd_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || o->hostname == NULL) {
		init_cmd_usage(stderr);
		return 2;
	}
	o->dir = argv[optind];
	if (!init_cmd_hostname_is_valid(o->hostname)) {
		fprintf(stderr,
		    "smtpgate init: \"%s\" is not a host name (e.g. mail.example.org)\n",
		    o->hostname);
		return 2;
	}
	if ((o->cert == NULL) != (o->key == NULL)) {
		fprintf(stderr, "smtpgate init: --cert and --key go together\n");
		return 2;
	}
	if (o->submission_port == o->smtps_port) {
		fprintf(stderr, "smtpgate init: the two listeners need two ports\n");
		return 2;
	}
	if (strpbrk(o->listen, " \t;#") != NULL || *o->listen == '\0') {
		fprintf(stderr, "smtpgate init: bad --listen address \"%s\"\n", o->listen);
		return 2;
	}
	return -1;
}

/* --cert and --key as absolute paths, so the configuration does not depend
 * on the folder init ran in; they must exist, and hold nothing that the
 * config syntax reads as a comment or a line end. */
static int
init_cmd_absolute(const char *path, char **abs_r)
{
	char buf[PATH_MAX];

	if (realpath(path, buf) == NULL) {
		fprintf(stderr, "smtpgate init: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (strpbrk(buf, ";#\n\r") != NULL) {
		fprintf(stderr, "smtpgate init: %s: a path with ';', '#' or a line break\n", buf);
		return -1;
	}
	*abs_r = xstrdup(buf);
	return 0;
}

/* The domain users of NAME probably have: NAME without its first label
 * when that leaves two labels or more (mail.example.org -> example.org). */
static const char *
init_cmd_domain(const char *hostname)
{
	const char *dot = strchr(hostname, '.');

	return dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 : hostname;
}

/* host:port for [listen] address; an IPv6 address gets its brackets. */
static void
init_cmd_address(FILE *f, const char *listen, long port)
{
	bool v6 = strchr(listen, ':') != NULL && listen[0] != '[';

	fprintf(f, "%s%s%s:%ld", v6 ? "[" : "", listen, v6 ? "]" : "", port);
}

static void
init_cmd_conf_listeners(FILE *f, const struct init_cmd_opts *o)
{
	fprintf(f,
	    "; Port %ld: the client says STARTTLS, then AUTH, then sends mail to anywhere\n"
	    "; (the submission port of RFC 6409).\n"
	    "[listen submission]\n"
	    "address = ",
	    o->submission_port);
	init_cmd_address(f, o->listen, o->submission_port);
	fprintf(f,
	    "\n"
	    "tls = starttls\n"
	    "auth = required                 ; MAIL before AUTH: 530 5.7.0\n"
	    "relay = authenticated\n"
	    "sender_binding = on             ; MAIL FROM and From: must belong to the login\n"
	    "\n"
	    "; Port %ld: TLS from the first byte (RFC 8314), otherwise the same.\n"
	    "[listen submissions]\n"
	    "address = ",
	    o->smtps_port);
	init_cmd_address(f, o->listen, o->smtps_port);
	fprintf(f,
	    "\n"
	    "tls = implicit\n"
	    "auth = required\n"
	    "relay = authenticated\n"
	    "\n"
	    "; To also take mail for your own domains from other servers, without AUTH:\n"
	    "; [listen mx]\n"
	    "; address = *:25\n"
	    "; tls = starttls\n"
	    "; auth = off\n"
	    "; relay = local\n"
	    "; and list them:\n"
	    "; [domains]\n"
	    "; local = example.org\n"
	    "\n");
}

/* The commented smtpgate.conf, in a malloc'd string. */
static char *
init_cmd_conf(const struct init_cmd_opts *o)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	if (f == NULL)
		abort(); /* out of memory */
	fprintf(f,
	    "; smtpgate.conf for %s, written by `smtpgate init`.\n"
	    "; Every key and its default: smtpgate.conf(5); more examples in\n"
	    "; smtpgate.conf.example (share/smtpgate/ of the installation, contrib/ of\n"
	    "; the source). Relative paths are relative to this file's folder: make\n"
	    "; them absolute (e.g. spool = /var/spool/smtpgate) if you move it.\n"
	    "; Check it with `smtpgate serve -c FILE --check`.\n"
	    "\n"
	    "[server]\n"
	    "hostname = %s\n"
	    "spool = spool                   ; the queue; created mode 0700 at start\n"
	    "log = smtpgate.log              ; JSON lines; or stderr\n"
	    "threads = auto                  ; one event loop per core\n"
	    "user = smtpgate                 ; started as root, the process that reads the\n"
	    "                                ; network runs as this user: useradd --system\n"
	    "                                ; --home-dir /var/spool/smtpgate --shell\n"
	    "                                ; /usr/sbin/nologin smtpgate\n"
	    "\n",
	    o->hostname, o->hostname);
	init_cmd_conf_listeners(f, o);
	fprintf(f, "[tls]\n");
	if (o->cert == NULL)
		fprintf(f,
		    "; Self-signed by `smtpgate init` for a first try: clients warn or refuse.\n"
		    "; Replace it with a certificate from a CA for %s (e.g. Let's\n"
		    "; Encrypt): cert is the chain, leaf first, then the intermediates.\n"
		    "cert = cert.pem\n"
		    "key = key.pem                   ; mode 0600\n",
		    o->hostname);
	else
		fprintf(f,
		    "cert = %s                       ; the chain: leaf first, then intermediates\n"
		    "key = %s                        ; mode 0600\n",
		    o->cert, o->key);
	fprintf(f,
	    "min_version = 1.2\n"
	    "\n"
	    "[auth]\n"
	    "; offered in this order, each only where it can work (-PLUS, PLAIN and\n"
	    "; LOGIN only inside TLS)\n"
	    "mechanisms = SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN\n"
	    "backend = file:users            ; smtpgate-passwd(5); smtpgate user add USER -f users\n"
	    "\n"
	    "; Limits and abuse defences ([limits]) are on with their defaults.\n"
	    "\n"
	    "; Delivery: without [relay] (or a [route DOMAIN]) accepted mail stays in the\n"
	    "; spool (`smtpgate queue list -c FILE`). To send it on through a smarthost:\n"
	    "; [relay]\n"
	    "; route = smarthost smtp.example.net:587\n"
	    "; tls = starttls\n"
	    "; auth = PLAIN\n"
	    "; credentials = relay.secret     ; mode 0600: \"USER PASSWORD\"\n"
	    "; or straight to the recipients' MX hosts: route = mx\n");
	if (fclose(f) != 0)
		abort(); /* out of memory */
	return s;
}

/* Every target must be absent before anything is written. */
static int
init_cmd_check_absent(const struct init_cmd_file *files, size_t n)
{
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (lstat(files[i].path, &st) == 0) {
			fprintf(
			    stderr, "smtpgate init: %s exists: not overwritten\n", files[i].path);
			return -1;
		}
		if (errno != ENOENT) {
			fprintf(stderr, "smtpgate init: %s: %s\n", files[i].path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* 0 written, -1 failed (message printed); 2 the file appeared meanwhile. */
static int
init_cmd_write(struct init_cmd_file *file)
{
	size_t len = strlen(file->data);
	int fd = open(file->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, file->mode);

	if (fd == -1) {
		fprintf(stderr, "smtpgate init: %s: %s%s\n", file->path, strerror(errno),
		    errno == EEXIST ? ": not overwritten" : "");
		return errno == EEXIST ? 2 : -1;
	}
	file->created = true;
	/* the mode passed to open is cut by the umask; these modes are the point */
	if (fchmod(fd, file->mode) == -1 || fs_write_all(fd, file->data, len) == -1 ||
	    fsync(fd) == -1) {
		fprintf(stderr, "smtpgate init: %s: %s\n", file->path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) == -1) {
		fprintf(stderr, "smtpgate init: %s: %s\n", file->path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
init_cmd_mkdir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	fprintf(stderr, "smtpgate init: %s: %s\n", dir,
	    errno == EEXIST ? "exists and is not a folder" : strerror(errno));
	return -1;
}

static void
init_cmd_next(const struct init_cmd_opts *o, const char *conf, const char *users)
{
	printf("Wrote %s and an empty passwd file %s (mode 0600)", conf, users);
	if (o->cert == NULL)
		printf(",\nand a self-signed certificate for %s (%s/cert.pem, key %s/key.pem,\n"
		       "valid %d days): replace it with one from a CA",
		    o->hostname, o->dir, o->dir, INIT_CERT_DAYS);
	printf(".\n\nNext:\n"
	       "  smtpgate user add you@%s -f %s     # asks for a password\n"
	       "  smtpgate serve -c %s --check\n"
	       "  smtpgate serve -c %s\n",
	    init_cmd_domain(o->hostname), users, conf, conf);
}

static int
init_cmd_run(struct init_cmd_opts *o)
{
	struct init_cmd_file files[INIT_CMD_FILES];
	struct init_cert cert = {NULL, NULL};
	char err[512], *conf_text;
	size_t n = 0;
	int rc = 2;

	files[n++] = (struct init_cmd_file){
	    .path = fs_path_join(o->dir, "smtpgate.conf"), .mode = 0644, .data = NULL};
	files[n++] =
	    (struct init_cmd_file){.path = fs_path_join(o->dir, "users"), .mode = 0600, .data = ""};
	if (o->cert == NULL) {
		files[n++] = (struct init_cmd_file){
		    .path = fs_path_join(o->dir, "key.pem"), .mode = 0600, .data = NULL};
		files[n++] = (struct init_cmd_file){
		    .path = fs_path_join(o->dir, "cert.pem"), .mode = 0644, .data = NULL};
	}
	conf_text = init_cmd_conf(o);
	files[0].data = conf_text;
	if (init_cmd_check_absent(files, n) == -1)
		goto done;
	rc = 1;
	if (o->cert == NULL) {
		if (init_cert_make(o->hostname, &cert, err, sizeof(err)) == -1) {
			fprintf(stderr, "smtpgate init: %s\n", err);
			goto done;
		}
		files[2].data = cert.key_pem;
		files[3].data = cert.cert_pem;
	}
	if (init_cmd_mkdir(o->dir) == -1)
		goto done;
	for (size_t i = 0; i < n; i++) {
		int w = init_cmd_write(&files[i]);

		if (w != 0) {
			rc = w == 2 ? 2 : 1;
			goto done;
		}
	}
	if (fs_fsync_dir(o->dir) == -1)
		fprintf(stderr, "smtpgate init: %s: fsync: %s\n", o->dir, strerror(errno));
	init_cmd_next(o, files[0].path, files[1].path);
	rc = 0;
done:
	for (size_t i = 0; i < n; i++) {
		if (rc != 0 && files[i].created)
			(void)unlink(files[i].path);
		free(files[i].path);
	}
	free(conf_text);
	init_cert_free(&cert);
	return rc;
}

int
init_main(int argc, char **argv)
{
	struct init_cmd_opts o;
	char *cert = NULL, *key = NULL, *dir;
	size_t dirlen;
	int rc = init_cmd_parse(argc, argv, &o);

	if (rc != -1)
		return rc;
	/* "mail/" names the files mail/users..., not mail//users */
	dir = xstrdup(o.dir);
	for (dirlen = strlen(dir); dirlen > 1 && dir[dirlen - 1] == '/'; dirlen--)
		dir[dirlen - 1] = '\0';
	o.dir = dir;
	if (o.cert != NULL) {
		if (init_cmd_absolute(o.cert, &cert) == -1 ||
		    init_cmd_absolute(o.key, &key) == -1) {
			free(cert);
			free(dir);
			return 2;
		}
		o.cert = cert;
		o.key = key;
	}
	rc = init_cmd_run(&o);
	free(cert);
	free(key);
	free(dir);
	return rc;
}
