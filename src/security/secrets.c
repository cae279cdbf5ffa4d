/*
 * secrets.c - loading JF_SECRETS_DIR into memory, and wiping it.
 *
 * Entries are opened relative to their directory's descriptor and checked
 * with fstat on that descriptor, so what is checked is what is read. A
 * symlink is followed (Kubernetes secret volumes are symlinks into a
 * ..data directory); the permission and size checks apply to the file it
 * reaches.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "security/secrets.h"

typedef struct secret {
    char          *name;
    unsigned char *val;
    size_t         len;
} secret_t;

struct jf_secrets {
    secret_t *v;
    size_t    n;
    bool      wiped;   /* values zeroed: lookups fail */
};

void jf_secrets_wipe(jf_secrets_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].val != NULL)
            explicit_bzero(s->v[i].val, JF_SECRET_MAX + 1);   /* the whole buffer */
        s->v[i].len = 0;
    }
    s->wiped = true;
}

void jf_secrets_destroy(jf_secrets_t *s)
{
    if (s == NULL)
        return;
    jf_secrets_wipe(s);
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].val);
        free(s->v[i].name);
    }
    free(s->v);
    free(s);
}

size_t jf_secrets_count(const jf_secrets_t *s)
{
    return s == NULL ? 0 : s->n;
}

jf_status_t jf_secrets_get(const jf_secrets_t *s, const char *name, const void **ret_ptr,
                           size_t *ret_len)
{
    if (s == NULL || s->wiped || name == NULL)
        return JF_ENOTFOUND;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].val != NULL && strcmp(s->v[i].name, name) == 0) {
            *ret_ptr = s->v[i].val;
            *ret_len = s->v[i].len;
            return JF_OK;
        }
    }
    return JF_ENOTFOUND;
}

/* ---- loading ---------------------------------------------------------------------------- */

/* Read one opened file (fd is consumed) as secret `name`. */
static jf_status_t add_file(jf_secrets_t *s, int fd, const struct stat *st, const char *dir,
                            const char *name, jf_err_t *err)
{
    unsigned char *buf = NULL;
    secret_t      *grown;
    size_t         len = 0;
    jf_status_t    rc = JF_OK;

    if (st->st_mode & 077) {
        rc = jf_err_set(err, JF_ECONFIG, "secret file %s/%s has mode %04o; it must not be "
                        "readable by group or others (chmod 600)", dir, name,
                        (unsigned)(st->st_mode & 07777));
        goto out;
    }
    if (st->st_size > JF_SECRET_MAX) {
        rc = jf_err_set(err, JF_ECONFIG, "secret file %s/%s is %lld bytes; the limit is %d",
                        dir, name, (long long)st->st_size, JF_SECRET_MAX);
        goto out;
    }
    /* One byte more than the limit, to notice a file that grew since fstat. */
    buf = malloc(JF_SECRET_MAX + 1);
    if (buf == NULL) {
        rc = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, JF_SECRET_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = jf_err_set(err, JF_EIO, "cannot read secret file %s/%s: %s", dir, name,
                            strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > JF_SECRET_MAX) {
            rc = jf_err_set(err, JF_ECONFIG, "secret file %s/%s is larger than %d bytes",
                            dir, name, JF_SECRET_MAX);
            goto out;
        }
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    grown = reallocarray(s->v, s->n + 1, sizeof(*grown));
    if (grown == NULL) {
        rc = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    s->v = grown;
    s->v[s->n].name = strdup(name);
    if (s->v[s->n].name == NULL) {
        rc = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    s->v[s->n].val = buf;
    s->v[s->n].len = len;
    s->n++;
    buf = NULL;
out:
    if (buf != NULL) {
        explicit_bzero(buf, JF_SECRET_MAX + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

/* Walk directory dfd (consumed), whose entries are named prefix + entry. */
static jf_status_t walk(jf_secrets_t *s, int dfd, const char *dir, const char *prefix,
                        int depth, jf_err_t *err)
{
    DIR          *d = fdopendir(dfd);
    struct dirent *e;
    jf_status_t   rc = JF_OK;

    if (d == NULL) {
        close(dfd);
        return jf_err_set(err, JF_EIO, "cannot read secrets directory %s/%s: %s", dir, prefix,
                          strerror(errno));
    }
    errno = 0;
    while (rc == JF_OK && (e = readdir(d)) != NULL) {
        char        name[512];
        struct stat st;
        int         fd;

        if (e->d_name[0] == '.')
            continue;   /* ., .., dotfiles, and Kubernetes' ..data machinery */
        if ((size_t)snprintf(name, sizeof(name), "%s%s", prefix, e->d_name) >= sizeof(name)) {
            rc = jf_err_set(err, JF_ECONFIG, "secret name %s%s is too long", prefix, e->d_name);
            break;
        }
        fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            rc = jf_err_set(err, errno == EACCES ? JF_ECONFIG : JF_EIO,
                            "cannot open secret file %s/%s: %s", dir, name, strerror(errno));
            break;
        }
        if (fstat(fd, &st) != 0) {
            rc = jf_err_set(err, JF_EIO, "cannot stat %s/%s: %s", dir, name, strerror(errno));
            close(fd);
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 >= JF_SECRETS_DEPTH) {
                close(fd);
                rc = jf_err_set(err, JF_ECONFIG, "secrets directory %s/%s is nested deeper "
                                "than %d levels", dir, name, JF_SECRETS_DEPTH);
                break;
            }
            strlcat(name, "/", sizeof(name));
            rc = walk(s, fd, dir, name, depth + 1, err);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(s, fd, &st, dir, name, err);
        } else {
            close(fd);
            rc = jf_err_set(err, JF_ECONFIG, "%s/%s in the secrets directory is neither a "
                            "regular file nor a directory", dir, name);
        }
        errno = 0;
    }
    if (rc == JF_OK && errno != 0)
        rc = jf_err_set(err, JF_EIO, "cannot read secrets directory %s/%s: %s", dir, prefix,
                        strerror(errno));
    closedir(d);
    return rc;
}

jf_status_t jf_secrets_load(const char *dir, jf_secrets_t **out, jf_err_t *err)
{
    jf_secrets_t *s = NULL;
    jf_status_t   rc;
    int           fd;

    if (dir == NULL || dir[0] == '\0')
        return jf_err_set(err, JF_EINVAL, "no secrets directory given (JF_SECRETS_DIR)");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = jf_err_set(err, errno == ENOENT || errno == ENOTDIR ? JF_ECONFIG : JF_EIO,
                        "cannot open secrets directory %s (JF_SECRETS_DIR): %s", dir,
                        strerror(errno));
        goto out;
    }
    rc = walk(s, fd, dir, "", 0, err);
out:
    if (rc != JF_OK) {
        jf_secrets_destroy(s);
        return rc;
    }
    *out = s;
    return JF_OK;
}
