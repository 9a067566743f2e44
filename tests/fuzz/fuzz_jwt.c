/*
 * libFuzzer target: the JWT verifier (auth/jwt) against a fixed JWKS, and
 * the JWKS parser (auth/jwks) on the same bytes. Neither may crash, leak or
 * read past the input; a token accepted must have the JWS compact shape.
 * The seeds (tests/fuzz/corpus/jwt) are tokens signed by the private
 * halves of the keys below (made once with python3-jwt), valid until 2100,
 * so mutations reach the claim checks behind the signature.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"n\":\"tKkqOvl_bDeGrilgewvAWlaJJRlGD41DGteOwc6BZN5XfxyA4M"
    "IAIbs8cvrbP1RaIT7zk79TrgNB4BPHPY2GaPZf9Ts-dfU50mwgxFekAEV37XUJI8bEegzw8N3RMgtzhTJbNrKb6tbf"
    "3HMSarIUq7Nbgd_c748zmBHcugYLlWOtptwG6hwlSbnxqljA38mPEFoV8e2-AMrDtf3o0Vp1mDY-SuVKJlmS9LTlI3"
    "ZIUijCv7ospfHlcDdcYT18s6kFxIuirGoJv1TGkZyRFYR6JKbILhgxqD4yMn1IC0h-lvUHVRMiTnSUu7S8sc_Q5fXn"
    "IHK1aIA--S9aDn-7APRXFQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec1\",\"x\":\"TT40ohfXulY"
    "-p96SzPnuuP3BVMLzOPEFsYeJIJ3rSMA\",\"y\":\"aNnDfjJPo1BZXS2eTkb7nsHlbn-mmXKiHw3tKvRNjZA\"},{\"kty"
    "\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed1\",\"x\":\"kFhrNTC5yvYp_HSlQe0ZMHZHFF6FtzmxYA_R-9vztZ8\"}]}";

#define FUZZ_NOW 1800000000 /* 2027-01-15 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jwks *keys;
	static const struct jwt_policy policy = {
	    "https://issuer.example.test", "smtpgate", "email"};
	static const char user[] = "alice@example.test";
	const char *tok = (const char *)data;
	char err[256];
	struct jwks *k;
	enum jwt_result r;

	if (keys == NULL) {
		keys = jwks_parse(fuzz_jwks, sizeof(fuzz_jwks) - 1, err, sizeof(err));
		if (keys == NULL || jwks_count(keys) != 3)
			abort();
	}
	r = jwt_verify(tok, size, keys, &policy, user, sizeof(user) - 1, FUZZ_NOW);
	if (r == JWT_OK && !jwt_is_compact(tok, size))
		abort();
	(void)jwt_result_name(r);
	k = jwks_parse(tok, size, err, sizeof(err));
	if (k != NULL) {
		if (jwks_count(k) == 0 || jwks_count(k) > JWKS_KEYS_MAX)
			abort();
		jwks_unref(k);
	}
	return 0;
}
