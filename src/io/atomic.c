/*
 * atomic.c: output files that appear whole or not at all (include/attnscale.h: atomic
 * outputs). A file is written under a temporary name in its own directory (".NAME.XXXXXX",
 * mkstemp), every write, the flush, fsync and close checked, then renamed over the target; on
 * any failure the temporary is removed and an earlier file of that name is left as it was.
 * Targets that exist and are not regular files (/dev/stdout, /dev/null, a FIFO) are written
 * in place, with the same checks, since renaming over them would replace the device.
 *
 * Temporaries not yet committed are listed in a fixed table that ats_atomic_cleanup reads and
 * unlinks without locks or allocation, so a front-end's SIGINT / SIGTERM / SIGHUP handler can
 * call it (async-signal-safe: only unlink and reads of volatile pointers).
 */
#define _XOPEN_SOURCE 700 // realpath
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

struct ats_atomic {
    char *path; // the target
    char *tmp;  // the temporary, or NULL when writing the target in place
    FILE *f;
    int slot;   // in pending, or -1
};

enum { PENDING_MAX = 256 };
static char *volatile pending[PENDING_MAX];
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;

static int pending_add(char *tmp) {
    int slot = -1;
    pthread_mutex_lock(&pending_mu);
    for (int i = 0; i < PENDING_MAX && slot < 0; i++)
        if (!pending[i]) {
            pending[i] = tmp;
            slot = i;
        }
    pthread_mutex_unlock(&pending_mu);
    return slot;
}

static void pending_remove(int slot) {
    if (slot < 0)
        return;
    pthread_mutex_lock(&pending_mu);
    pending[slot] = NULL;
    pthread_mutex_unlock(&pending_mu);
}

void ats_atomic_cleanup(void) {
    for (int i = 0; i < PENDING_MAX; i++) {
        char *t = pending[i];
        if (t)
            unlink(t);
    }
}

static void atomic_free(struct ats_atomic *a) {
    pending_remove(a->slot);
    ats_free(a->path);
    ats_free(a->tmp);
    ats_free(a);
}

int ats_atomic_open(struct ats_atomic **out, const char *path) {
    ATS_ASSERT(out && path);
    *out = NULL;
    if (!*path)
        ATS_ERROR(ATS_STATUS_EINVAL, "an empty file name");
    struct ats_atomic *a = ats_malloc(sizeof *a);
    size_t len = strlen(path);
    char *name = ats_malloc(len + 1), *tmp = ats_malloc(len + 16);
    if (!a || !name || !tmp) {
        ats_free(a);
        ats_free(name);
        ats_free(tmp);
        ATS_ERROR(ATS_STATUS_ENOMEM, "no memory to open '%.200s'", path);
    }
    memcpy(name, path, len + 1);
    *a = (struct ats_atomic){name, NULL, NULL, -1};
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) { // a device or FIFO: written in place
        ats_free(tmp);
        if (S_ISDIR(st.st_mode)) {
            atomic_free(a);
            ATS_ERROR(ATS_STATUS_EIO, "cannot write '%.200s': it is a directory", path);
        }
        if (!(a->f = fopen(path, "w"))) {
            int err = errno;
            atomic_free(a);
            ATS_ERROR(ATS_STATUS_EIO, "cannot open '%.200s' for writing: %s", path,
                      strerror(err));
        }
        *out = a;
        return ATS_STATUS_OK;
    }
    // ".NAME.XXXXXX" beside the target, so the rename stays inside one file system.
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(tmp, len + 16, "%.*s.%s.XXXXXX", (int)dir, path, path + dir);
    // Listed before it exists: a signal between mkstemp and the listing would leave the file
    // (mkstemp writes the name into tmp before it creates the file).
    a->tmp = tmp;
    a->slot = pending_add(tmp);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int err = errno;
        atomic_free(a);
        ATS_ERROR(ATS_STATUS_EIO, "cannot create a file beside '%.200s': %s", path,
                  strerror(err));
    }
    // The mode a new file would get (0666 less the umask), or the existing file's.
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, exists ? st.st_mode & 07777 : 0666 & ~mask) != 0 ||
        !(a->f = fdopen(fd, "w"))) {
        int err = errno;
        close(fd);
        unlink(tmp);
        atomic_free(a);
        ATS_ERROR(ATS_STATUS_EIO, "cannot write beside '%.200s': %s", path, strerror(err));
    }
    *out = a;
    return ATS_STATUS_OK;
}

FILE *ats_atomic_stream(struct ats_atomic *a) {
    ATS_ASSERT(a);
    return a->f;
}

void ats_atomic_abort(struct ats_atomic *a) {
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    atomic_free(a);
}

int ats_atomic_commit(struct ats_atomic *a) {
    ATS_ASSERT(a && a->f);
    int bad = fflush(a->f) != 0 || ferror(a->f);
    int err = bad ? errno : 0;
    if (!bad && a->tmp && fsync(fileno(a->f)) != 0) {
        bad = 1;
        err = errno;
    }
    if (fclose(a->f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    a->f = NULL;
    if (!bad && a->tmp && rename(a->tmp, a->path) != 0) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        if (a->tmp)
            unlink(a->tmp);
        char path[256];
        snprintf(path, sizeof path, "%s", a->path);
        atomic_free(a);
        ATS_ERROR(ATS_STATUS_EIO, "writing '%.200s' failed: %s", path,
                  err ? strerror(err) : "write error");
    }
    atomic_free(a);
    return ATS_STATUS_OK;
}

// ----------------------------------------------------------------------------
// Outputs against inputs

// 1 when a and b name the same file: the same device and inode, or (b not there yet) the same
// path once the directories' symbolic links are resolved.
int ats_same_file(const char *a, const char *b) {
    ATS_ASSERT(a && b);
    struct stat sa, sb;
    int ha = stat(a, &sa) == 0, hb = stat(b, &sb) == 0;
    if (ha && hb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    // One is missing: compare the resolved directories and the names.
    const char *p[2] = {a, b};
    char *full[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        const char *slash = strrchr(p[i], '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - p[i]) + (slash == p[i]) : 1,
                 slash ? p[i] : ".");
        char *r = realpath(dir, NULL);
        if (r) {
            size_t n = strlen(r) + strlen(slash ? slash + 1 : p[i]) + 2;
            full[i] = malloc(n);
            if (full[i])
                snprintf(full[i], n, "%s/%s", r, slash ? slash + 1 : p[i]);
            free(r);
        }
    }
    int same = full[0] && full[1] && strcmp(full[0], full[1]) == 0;
    free(full[0]);
    free(full[1]);
    return same;
}
