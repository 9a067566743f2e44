/*
 * audit_chain: where the issuer of a server certificate is when the cert
 * file does not hold it, so that the audit tells a leaf signed directly by
 * a root (complete: clients have the root, or are given it, and servers do
 * not send it) from a leaf whose intermediate is missing (incomplete).
 */
#ifndef SG_DIAG_AUDIT_CHAIN_H
#define SG_DIAG_AUDIT_CHAIN_H

#include <stddef.h>

#include <openssl/x509.h>

enum audit_chain_issuer {
	AUDIT_CHAIN_ISSUER_ROOT, /* a self-signed CA: nothing is missing */
	AUDIT_CHAIN_ISSUER_INTERMEDIATE, /* found, and not a root: the file must hold it */
	AUDIT_CHAIN_ISSUER_PUBLISHED, /* not found, but the leaf names a caIssuers URL */
	AUDIT_CHAIN_ISSUER_UNKNOWN, /* not found anywhere */
};

/* Looks for the issuer of leaf among the certificates of the PEM files
 * beside cert_path (*.pem, *.crt, *.cer: a private CA's files usually sit
 * there), then among this machine's trusted CAs, then at the leaf's
 * Authority Information Access caIssuers URL. where gets the file or
 * folder it was found in, or the URL. */
enum audit_chain_issuer audit_chain_find_issuer(
    const char *cert_path, X509 *leaf, char *where, size_t wherelen);

#endif
