/* SPDX-License-Identifier: MIT */
/* keys.c: see keys.h. */
#include "keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

static int fail(char *err, size_t errlen, int res, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return res;
}

static bool z85_key_ok(const char *z)
{
	uint8_t bin[KEY_BIN_LEN];

	return strlen(z) == KEY_Z85_LEN && zmq_z85_decode(bin, z) != NULL;
}

void keys_z85(const uint8_t key[KEY_BIN_LEN], char out[KEY_Z85_LEN + 1])
{
	zmq_z85_encode(out, key, KEY_BIN_LEN);
}

/* --- writing ---------------------------------------------------------- */

static int write_file(const char *path, mode_t mode, const char *text,
		      char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0) {
		int res = -errno;
		close(fd);
		unlink(path);
		return fail(err, errlen, res ? res : -EIO, "writing %s failed",
			    path);
	}
	close(fd);
	return 0;
}

int keys_generate(const char *base, char *err, size_t errlen)
{
	struct key_pair kp;
	char path[4096], text[256];
	int res;

	if (zmq_curve_keypair(kp.pub, kp.sec) < 0)
		return fail(err, errlen, -ENOTSUP, "this libzmq cannot make "
			    "CURVE keys (built without libsodium?)");
	snprintf(path, sizeof(path), "%s.key", base);
	snprintf(text, sizeof(text),
		 "# evshm-bridge CURVE key pair: keep this file secret\n"
		 "public-key %s\nsecret-key %s\n", kp.pub, kp.sec);
	res = write_file(path, 0600, text, err, errlen);
	if (res < 0)
		goto out_wipe;
	snprintf(path, sizeof(path), "%s.pub", base);
	snprintf(text, sizeof(text),
		 "# evshm-bridge CURVE public key: give it to the other side\n"
		 "public-key %s\n", kp.pub);
	res = write_file(path, 0644, text, err, errlen);
	if (res < 0) {
		snprintf(path, sizeof(path), "%s.key", base);
		unlink(path);
	}
out_wipe:
	explicit_bzero(&kp, sizeof(kp));
	explicit_bzero(text, sizeof(text));
	return res;
}

/* --- reading ---------------------------------------------------------- */

/* Read a small text file whole (at most 1 MiB) into a NUL-terminated
 * buffer of *@size bytes, which the caller gives to wipe_text(). */
static int read_text(const char *path, bool secret, char **out,
		     size_t *size, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (1 << 20)) {
		close(fd);
		return fail(err, errlen, -EINVAL, "%s: not a small regular "
			    "file", path);
	}
	if (secret && (st.st_mode & 077)) {
		close(fd);
		return fail(err, errlen, -EPERM, "%s: a secret key must not be "
			    "readable by group or others (chmod 600 %s)", path,
			    path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return fail(err, errlen, -EIO, "%s: short read", path);
	}
	buf[n] = '\0';
	*out = buf;
	*size = (size_t)n + 1;
	return 0;
}

/* Wipe and free what read_text() gave: all of it, since parsing cuts
 * the text into words with NULs (strlen() would stop at the first). */
static void wipe_text(char *text, size_t size)
{
	explicit_bzero(text, size);
	free(text);
}

/* Split the next line of *@p into words (at most 3); *@p advances.
 * Comments are up to the caller: '#' is also a Z85 digit. */
static int next_line(char **p, char *word[3])
{
	char *line = *p, *nl = strchr(line, '\n'), *save = NULL;
	int n = 0;

	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = line + strlen(line);
	}
	for (char *w = strtok_r(line, " \t\r", &save); w && n < 3;
	     w = strtok_r(NULL, " \t\r", &save))
		word[n++] = w;
	return n;
}

/* The key a line holds as "public-key KEY [label]" or "KEY [label]";
 * NULL for a comment (first word starts with '#' and is not a key);
 * @*bad for anything else. */
static const char *line_key(char *word[3], int n, char **label, bool *bad)
{
	*label = NULL;
	*bad = false;
	if (n >= 2 && !strcmp(word[0], "public-key") && z85_key_ok(word[1])) {
		*label = n == 3 ? word[2] : NULL;
		return word[1];
	}
	if (n >= 1 && z85_key_ok(word[0])) {
		*label = n >= 2 ? word[1] : NULL;
		return word[0];
	}
	*bad = n > 0 && word[0][0] != '#';
	return NULL;
}

int keys_load_pair(const char *path, struct key_pair *kp, char *err,
		   size_t errlen)
{
	char *text, *p, *word[3], derived[KEY_Z85_LEN + 1];
	size_t size;
	int res = read_text(path, true, &text, &size, err, errlen);

	if (res < 0)
		return res;
	kp->pub[0] = kp->sec[0] = '\0';
	for (p = text; *p;) {
		int n = next_line(&p, word);
		if (n == 2 && !strcmp(word[0], "public-key"))
			snprintf(kp->pub, sizeof(kp->pub), "%s", word[1]);
		else if (n == 2 && !strcmp(word[0], "secret-key"))
			snprintf(kp->sec, sizeof(kp->sec), "%s", word[1]);
	}
	wipe_text(text, size);
	if (!z85_key_ok(kp->pub) || !z85_key_ok(kp->sec))
		res = fail(err, errlen, -EINVAL, "%s: needs a valid public-key "
			   "and secret-key line (made by `evshm-bridge keygen`)",
			   path);
	else if (zmq_curve_public(derived, kp->sec) < 0 ||
		 strcmp(derived, kp->pub))
		res = fail(err, errlen, -EINVAL, "%s: the public key does not "
			   "belong to the secret key", path);
	if (res < 0)
		explicit_bzero(kp, sizeof(*kp));
	return res;
}

int keys_load_public(const char *arg, char pub[KEY_Z85_LEN + 1], char *err,
		     size_t errlen)
{
	char *text, *p, *word[3];
	const char *k = NULL;
	size_t size;
	int res;

	if (z85_key_ok(arg)) {
		memcpy(pub, arg, KEY_Z85_LEN + 1);
		return 0;
	}
	/* A public key is no secret: no permission check. */
	res = read_text(arg, false, &text, &size, err, errlen);
	if (res < 0)
		return res;
	for (p = text; *p && !k;) {
		int n = next_line(&p, word);
		if (n >= 2 && !strcmp(word[0], "public-key"))
			k = word[1];
	}
	if (k && z85_key_ok(k))
		memcpy(pub, k, KEY_Z85_LEN + 1);
	else
		res = fail(err, errlen, -EINVAL, "%s: no valid public-key line",
			   arg);
	wipe_text(text, size);
	return res;
}

int keys_load_allow(const char *path, struct allow_list *al, char *err,
		    size_t errlen)
{
	char *text, *p, *word[3];
	size_t cap = 0, lineno = 0;
	size_t size;
	int res = read_text(path, false, &text, &size, err, errlen);

	if (res < 0)
		return res;
	*al = (struct allow_list){ 0 };
	for (p = text; *p;) {
		char *label;
		bool bad;
		int n = next_line(&p, word);
		const char *k = line_key(word, n, &label, &bad);

		lineno++;
		if (!k && !bad)
			continue;
		if (bad) {
			res = fail(err, errlen, -EINVAL, "%s:%zu: not a public "
				   "key", path, lineno);
			goto out_fail;
		}
		if (al->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct allow_entry *e = realloc(al->e, ncap * sizeof(*e));
			if (!e) {
				res = fail(err, errlen, -ENOMEM, "out of memory");
				goto out_fail;
			}
			al->e = e;
			cap = ncap;
		}
		struct allow_entry *e = &al->e[al->n++];
		zmq_z85_decode(e->key, k);
		snprintf(e->label, sizeof(e->label), "%s", label ? label : k);
	}
	if (al->n == 0) {
		res = fail(err, errlen, -EINVAL, "%s: no public key in the "
			   "allow-list: nobody could connect", path);
		goto out_fail;
	}
	wipe_text(text, size);
	return 0;

out_fail:
	wipe_text(text, size);
	keys_free_allow(al);
	return res;
}

const struct allow_entry *keys_allowed(const struct allow_list *al,
				       const uint8_t key[KEY_BIN_LEN])
{
	for (size_t i = 0; i < al->n; i++)
		if (!memcmp(al->e[i].key, key, KEY_BIN_LEN))
			return &al->e[i];
	return NULL;
}

void keys_free_allow(struct allow_list *al)
{
	free(al->e);
	*al = (struct allow_list){ 0 };
}
