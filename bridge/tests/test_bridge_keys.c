/* SPDX-License-Identifier: MIT */
/*
 * The bridge's key files (keys.c): a secret key file that group or
 * others may read is refused, and the secret key read from a file leaves
 * no copy behind in memory given back to the allocator.  The program is
 * linked with --wrap=free: every buffer keys.c frees is searched for the
 * secret key (malloc_usable_size() bytes) before it is freed.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys.h"
#include "util.h"

void __real_free(void *p);
void __wrap_free(void *p);

static char secret[KEY_Z85_LEN + 1]; /* what must not be left behind */
static int left_behind;              /* freed buffers that held it */

void __wrap_free(void *p)
{
	if (p && secret[0] &&
	    memmem(p, malloc_usable_size(p), secret, KEY_Z85_LEN))
		left_behind++;
	__real_free(p);
}

/* keygen into the test's directory; the secret key as written. */
static void make_pair(char *path, size_t n)
{
	char base[4096], err[256], line[4200];
	FILE *f;

	snprintf(base, sizeof(base), "%s/k", tu_tmpdir());
	snprintf(path, n, "%s.key", base);
	remove(path);
	snprintf(line, sizeof(line), "%s.pub", base);
	remove(line);
	tu_assert_res(keys_generate(base, err, sizeof(err)), 0);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "secret-key %40s", secret) == 1)
			break;
	fclose(f);
	assert_int_equal(strlen(secret), KEY_Z85_LEN);
}

static void key_wiped_after_load(void **state)
{
	struct key_pair kp;
	char path[4200], err[256];

	(void)state;
	make_pair(path, sizeof(path));
	left_behind = 0;
	tu_assert_res(keys_load_pair(path, &kp, err, sizeof(err)), 0);
	assert_string_equal(kp.sec, secret);
	assert_int_equal(left_behind, 0);
	explicit_bzero(&kp, sizeof(kp));
	secret[0] = '\0';
}

static void readable_key_refused(void **state)
{
	struct key_pair kp;
	char path[4200], err[256];

	(void)state;
	make_pair(path, sizeof(path));
	secret[0] = '\0';
	assert_int_equal(chmod(path, 0640), 0);
	tu_assert_res(keys_load_pair(path, &kp, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_wiped_after_load),
		cmocka_unit_test(readable_key_refused),
	};
	return TU_RUN(tests, argc, argv);
}
