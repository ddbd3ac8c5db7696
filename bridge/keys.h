/* SPDX-License-Identifier: MIT */
/*
 * keys.h: CURVE keys in files (docs/bridge.md, "Security").
 *
 *   NAME.key  (mode 0600)          NAME.pub
 *     # comment                      # comment
 *     public-key <40 chars Z85>      public-key <40 chars Z85>
 *     secret-key <40 chars Z85>
 *
 * An allow-list holds one public key per line, either bare or as
 * "public-key KEY", optionally followed by a label that the logs show
 * (so `cat host1.pub host2.pub > allowed` makes a valid list).  '#'
 * starts a comment line.
 *
 * Functions return 0 or a negative errno and, on failure, write a
 * sentence for the user into @err.
 */
#ifndef EVSHM_BRIDGE_KEYS_H
#define EVSHM_BRIDGE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEY_Z85_LEN 40
#define KEY_BIN_LEN 32
#define KEY_LABEL_MAX 64

struct key_pair {
	char pub[KEY_Z85_LEN + 1];
	char sec[KEY_Z85_LEN + 1];
};

struct allow_entry {
	uint8_t key[KEY_BIN_LEN];
	char label[KEY_LABEL_MAX];
};

struct allow_list {
	struct allow_entry *e;
	size_t n;
};

/* Make a new key pair and write BASE.key (0600) and BASE.pub; neither
 * file may exist yet. */
int keys_generate(const char *base, char *err, size_t errlen);

/* Read a key pair from @path.  Refused if group or others may read it. */
int keys_load_pair(const char *path, struct key_pair *kp, char *err,
		   size_t errlen);

/* @arg is a public key in Z85, or a file holding one (a .pub or .key). */
int keys_load_public(const char *arg, char pub[KEY_Z85_LEN + 1], char *err,
		     size_t errlen);

int keys_load_allow(const char *path, struct allow_list *al, char *err,
		    size_t errlen);
/* The entry for @key, or NULL if it is not allowed. */
const struct allow_entry *keys_allowed(const struct allow_list *al,
				       const uint8_t key[KEY_BIN_LEN]);
void keys_free_allow(struct allow_list *al);

/* @key as Z85 into @out (41 bytes). */
void keys_z85(const uint8_t key[KEY_BIN_LEN], char out[KEY_Z85_LEN + 1]);

#endif
