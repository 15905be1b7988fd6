#define SN_LOG_MOD "spool"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cursor.h"
#include "err.h"
#include "log.h"

/* Entry framing, all integers big-endian:
 *
 *   u32 magic "SPL1"   u32 crc32c(type .. end of data)
 *   u8 type  u8 flags(0)  u16 keylen  u32 datalen  u64 seq
 *   key[keylen]  data[datalen]
 *
 * The magic and the checksum make a torn tail (a crash or ENOSPC mid-write) or a damaged
 * block detectable; the lengths are capped before any allocation. */
#define MAGIC 0x53504c31u
#define HDR 24u
#define SEG_SUFFIX ".spool"
#define OFF_SUFFIX ".off"

struct seg {
    uint64_t id;
    uint64_t size;      /* bytes in the file */
    uint64_t start;     /* replay starts here (from <id>.off) */
    uint64_t unsettled; /* entries handed out, not yet settled */
    bool done;          /* read to its end (or its damaged rest skipped) */
};

struct sn_spool {
    char *dir;
    int dirfd, lockfd;
    uint64_t max_bytes, seg_max, bytes;
    struct seg *segs; /* ascending id */
    size_t nsegs, segcap;
    uint64_t next_id;
    int wr_fd;       /* appends go to the last segment while >= 0 */
    int rd_fd;       /* open on rd_id */
    uint64_t rd_id, rd_off;
    uint8_t *rbuf, *wbuf;
    size_t rcap, wcap;
    struct sn_spool_stats st;
};

/* CRC-32C (Castagnoli, reflected 0x82F63B78), four bits at a time. */
static const uint32_t crc_nibble[16] = {
    0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3,
    0x61c69362, 0x7198540d, 0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
    0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
    }
    return ~crc;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static bool grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return false;
    *buf = p;
    *cap = n;
    return true;
}

static void seg_name(char *out, size_t n, uint64_t id, const char *suffix)
{
    snprintf(out, n, "%016" PRIu64 "%s", id, suffix);
}

static struct seg *seg_find(struct sn_spool *sp, uint64_t id)
{
    for (size_t i = 0; i < sp->nsegs; i++)
        if (sp->segs[i].id == id)
            return &sp->segs[i];
    return NULL;
}

static struct seg *seg_push(struct sn_spool *sp, uint64_t id)
{
    if (sp->nsegs == sp->segcap) {
        size_t n = sp->segcap ? sp->segcap * 2 : 16;
        struct seg *s = realloc(sp->segs, n * sizeof(*s));
        if (!s)
            return NULL;
        sp->segs = s;
        sp->segcap = n;
    }
    struct seg *s = &sp->segs[sp->nsegs++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    return s;
}

static bool seg_is_active(const struct sn_spool *sp, const struct seg *s)
{
    return sp->wr_fd >= 0 && s == &sp->segs[sp->nsegs - 1];
}

/* Deletes a segment that was read to its end and whose entries are all settled. */
static void seg_maybe_delete(struct sn_spool *sp, struct seg *s)
{
    if (!s->done || s->unsettled || seg_is_active(sp, s))
        return;
    char name[64];
    seg_name(name, sizeof(name), s->id, SEG_SUFFIX);
    if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT)
        sn_log_ratelimited(SN_LOG_WARN, "%s/%s: unlink: %s", sp->dir, name, strerror(errno));
    seg_name(name, sizeof(name), s->id, OFF_SUFFIX);
    (void)unlinkat(sp->dirfd, name, 0);
    if (sp->rd_fd >= 0 && sp->rd_id == s->id) {
        close(sp->rd_fd);
        sp->rd_fd = -1;
    }
    sp->bytes -= s->size;
    size_t i = (size_t)(s - sp->segs);
    memmove(s, s + 1, (sp->nsegs - i - 1) * sizeof(*s));
    sp->nsegs--;
}

static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Reads <id>.off, written by a clean close: replay of that segment resumes there. */
static uint64_t read_offset(struct sn_spool *sp, uint64_t id, uint64_t size)
{
    char name[64], buf[32];
    seg_name(name, sizeof(name), id, OFF_SUFFIX);
    int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    uint64_t off = 0;
    if (n <= 0)
        return 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    if (!parse_u64(buf, (size_t)n, &off) || off > size)
        return 0;
    return off;
}

static int scan(struct sn_spool *sp)
{
    int fd = dup(sp->dirfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    rewinddir(d);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        uint64_t id;
        if (n != 16 + strlen(SEG_SUFFIX) || strcmp(de->d_name + 16, SEG_SUFFIX) != 0 ||
            !parse_u64(de->d_name, 16, &id))
            continue;
        struct stat stb;
        if (fstatat(sp->dirfd, de->d_name, &stb, 0) < 0 || !S_ISREG(stb.st_mode))
            continue;
        if (stb.st_size == 0) {
            (void)unlinkat(sp->dirfd, de->d_name, 0);
            continue;
        }
        struct seg *s = seg_push(sp, id);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        s->size = (uint64_t)stb.st_size;
        sp->bytes += s->size;
        if (id >= sp->next_id)
            sp->next_id = id + 1;
    }
    closedir(d);
    if (rc)
        return rc;
    if (sp->nsegs)
        qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), seg_cmp);
    for (size_t i = 0; i < sp->nsegs; i++)
        sp->segs[i].start = read_offset(sp, sp->segs[i].id, sp->segs[i].size);
    return 0;
}

struct sn_spool *sn_spool_open(const char *dir, uint64_t max_bytes)
{
    struct sn_spool *sp = NULL;
    int rc;
    if (!dir || !*dir || max_bytes < 4096) {
        SN_ERR(EINVAL, "spool needs a directory and at least 4096 bytes");
        return NULL;
    }
    sp = calloc(1, sizeof(*sp));
    if (!sp || !(sp->dir = strdup(dir))) {
        SN_ERR(ENOMEM, "spool %s", dir);
        goto fail;
    }
    sp->dirfd = sp->lockfd = sp->wr_fd = sp->rd_fd = -1;
    sp->max_bytes = max_bytes;
    sp->seg_max = max_bytes / 4 < SN_SPOOL_SEGMENT_BYTES ? max_bytes / 4 : SN_SPOOL_SEGMENT_BYTES;
    sp->next_id = 1;
    if ((rc = mkdir_p(dir)) < 0) {
        SN_ERR(-rc, "%s: mkdir: %s", dir, strerror(-rc));
        goto fail;
    }
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        SN_ERR(errno, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    sp->lockfd = openat(sp->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd < 0) {
        SN_ERR(errno, "%s/lock: %s", dir, strerror(errno));
        goto fail;
    }
    if (flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            SN_ERR(EBUSY, "%s: spool in use by another process", dir);
        else
            SN_ERR(errno, "%s/lock: flock: %s", dir, strerror(errno));
        goto fail;
    }
    if ((rc = scan(sp)) < 0) {
        SN_ERR(-rc, "%s: %s", dir, strerror(-rc));
        goto fail;
    }
    return sp;
fail:
    sn_spool_close(sp);
    return NULL;
}

/* Writes <id>.off atomically (tmp + rename). */
static void write_offset(struct sn_spool *sp, uint64_t id, uint64_t off)
{
    char name[64], tmp[72], buf[32];
    seg_name(name, sizeof(name), id, OFF_SUFFIX);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    int fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", off);
    bool ok = write(fd, buf, (size_t)n) == n && fdatasync(fd) == 0;
    close(fd);
    if (!ok || renameat(sp->dirfd, tmp, sp->dirfd, name) < 0)
        (void)unlinkat(sp->dirfd, tmp, 0);
}

void sn_spool_close(struct sn_spool *sp)
{
    if (!sp)
        return;
    if (sp->wr_fd >= 0) {
        (void)fdatasync(sp->wr_fd);
        close(sp->wr_fd);
        sp->wr_fd = -1;
    }
    if (sp->rd_fd >= 0) {
        struct seg *s = seg_find(sp, sp->rd_id);
        /* Every entry read from this segment was settled: a restart resumes after them. */
        if (s && !s->done && !s->unsettled && sp->rd_off > s->start)
            write_offset(sp, s->id, sp->rd_off);
        close(sp->rd_fd);
    }
    /* Fully read and settled segments go now that none is active. */
    for (size_t i = sp->nsegs; i-- > 0;)
        seg_maybe_delete(sp, &sp->segs[i]);
    if (sp->lockfd >= 0)
        close(sp->lockfd);
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    free(sp->segs);
    free(sp->rbuf);
    free(sp->wbuf);
    free(sp->dir);
    free(sp);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int rotate(struct sn_spool *sp)
{
    if (sp->wr_fd >= 0) {
        (void)fdatasync(sp->wr_fd);
        close(sp->wr_fd);
        sp->wr_fd = -1;
    }
    uint64_t id = sp->next_id++;
    char name[64];
    seg_name(name, sizeof(name), id, SEG_SUFFIX);
    int fd = openat(sp->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return SN_ERR(errno, "%s/%s: %s", sp->dir, name, strerror(errno));
    if (!seg_push(sp, id)) {
        close(fd);
        (void)unlinkat(sp->dirfd, name, 0);
        return SN_ERR(ENOMEM, "spool segment list");
    }
    sp->wr_fd = fd;
    return 0;
}

int sn_spool_append(struct sn_spool *sp, const struct sn_record *r)
{
    size_t klen = r->key ? r->keylen : 0;
    if (klen > SN_SPOOL_MAX_KEY || r->len > SN_SPOOL_MAX_DATA ||
        (unsigned)r->type >= SN_REC_TYPE_MAX)
        return SN_ERR(EINVAL, "record too large for the spool (key %zu, data %zu)", klen, r->len);
    uint64_t n = HDR + klen + r->len;
    if (sp->bytes + n > sp->max_bytes) {
        sp->st.full++;
        return SN_ERR(SN_EFULL, "%s: spool full (%" PRIu64 " of %" PRIu64 " bytes)", sp->dir,
                      sp->bytes, sp->max_bytes);
    }
    struct seg *last = sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
    if (sp->wr_fd < 0 || (last->size > 0 && last->size + n > sp->seg_max)) {
        int rc = rotate(sp);
        if (rc < 0)
            return rc;
        last = &sp->segs[sp->nsegs - 1];
    }
    if (!grow(&sp->wbuf, &sp->wcap, (size_t)n))
        return SN_ERR(ENOMEM, "spool write buffer");
    uint8_t *b = sp->wbuf;
    put_u32(b, MAGIC);
    b[8] = (uint8_t)r->type;
    b[9] = 0;
    put_u16(b + 10, (uint16_t)klen);
    put_u32(b + 12, (uint32_t)r->len);
    put_u64(b + 16, r->seq);
    if (klen)
        memcpy(b + HDR, r->key, klen);
    if (r->len)
        memcpy(b + HDR + klen, r->data, r->len);
    put_u32(b + 4, crc32c_update(0, b + 8, (size_t)n - 8));
    int rc = write_all(sp->wr_fd, b, (size_t)n);
    if (rc < 0) {
        /* Cut a partial frame off so later appends to this segment stay readable. */
        if (ftruncate(sp->wr_fd, (off_t)last->size) < 0) {
            close(sp->wr_fd);
            sp->wr_fd = -1;
        }
        return SN_ERR(-rc, "%s: write: %s", sp->dir, strerror(-rc));
    }
    last->size += n;
    sp->bytes += n;
    sp->st.appended++;
    return 0;
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -SN_ETRUNC;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* The rest of s cannot be read: count it, skip it. An active segment stops taking appends
 * so nothing is written behind the damage. */
static void seg_skip_rest(struct sn_spool *sp, struct seg *s, const char *why)
{
    sp->st.corrupt++;
    sn_log_ratelimited(SN_LOG_WARN, "%s: segment %016" PRIu64 ": %s at offset %" PRIu64
                       "; skipping its last %" PRIu64 " bytes", sp->dir, s->id, why,
                       sp->rd_off, s->size - sp->rd_off);
    if (seg_is_active(sp, s)) {
        close(sp->wr_fd);
        sp->wr_fd = -1;
    }
    s->done = true;
    seg_maybe_delete(sp, s);
}

int sn_spool_next(struct sn_spool *sp, struct sn_spool_entry *e)
{
    for (;;) {
        struct seg *s = NULL;
        for (size_t i = 0; i < sp->nsegs && !s; i++)
            if (!sp->segs[i].done)
                s = &sp->segs[i];
        if (!s)
            return -ENODATA;
        if (sp->rd_fd < 0 || sp->rd_id != s->id) {
            if (sp->rd_fd >= 0)
                close(sp->rd_fd);
            char name[64];
            seg_name(name, sizeof(name), s->id, SEG_SUFFIX);
            sp->rd_fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
            if (sp->rd_fd < 0) {
                int e2 = errno;
                sn_log_ratelimited(SN_LOG_WARN, "%s/%s: %s", sp->dir, name, strerror(e2));
                s->done = true;
                sp->st.corrupt++;
                seg_maybe_delete(sp, s);
                continue;
            }
            sp->rd_id = s->id;
            sp->rd_off = s->start;
        }
        if (sp->rd_off >= s->size) {
            if (seg_is_active(sp, s)) {
                /* Caught up with the writer: retire the segment so it can be deleted once
                 * settled; the next append starts a new one. */
                close(sp->wr_fd);
                sp->wr_fd = -1;
            }
            s->done = true;
            close(sp->rd_fd);
            sp->rd_fd = -1;
            seg_maybe_delete(sp, s);
            continue;
        }
        uint8_t hdr[HDR];
        if (s->size - sp->rd_off < HDR) {
            seg_skip_rest(sp, s, "torn header");
            continue;
        }
        int rc = pread_all(sp->rd_fd, hdr, HDR, sp->rd_off);
        if (rc == -SN_ETRUNC) {
            seg_skip_rest(sp, s, "short file");
            continue;
        }
        if (rc < 0)
            return SN_ERR(-rc, "%s: read: %s", sp->dir, strerror(-rc));
        struct sn_cur c = sn_cur_make(hdr, HDR);
        uint32_t magic = sn_cur_u32(&c);
        uint32_t crc = sn_cur_u32(&c);
        uint8_t type = sn_cur_u8(&c);
        (void)sn_cur_u8(&c);
        uint16_t klen = sn_cur_u16(&c);
        uint32_t dlen = sn_cur_u32(&c);
        uint64_t seq = (uint64_t)sn_cur_u32(&c) << 32;
        seq |= sn_cur_u32(&c);
        if (magic != MAGIC || type >= SN_REC_TYPE_MAX || klen > SN_SPOOL_MAX_KEY ||
            dlen > SN_SPOOL_MAX_DATA) {
            seg_skip_rest(sp, s, "bad entry header");
            continue;
        }
        uint64_t n = HDR + (uint64_t)klen + dlen;
        if (n > s->size - sp->rd_off) {
            seg_skip_rest(sp, s, "torn entry");
            continue;
        }
        if (!grow(&sp->rbuf, &sp->rcap, (size_t)n))
            return SN_ERR(ENOMEM, "spool read buffer");
        rc = pread_all(sp->rd_fd, sp->rbuf, (size_t)n, sp->rd_off);
        if (rc == -SN_ETRUNC) {
            seg_skip_rest(sp, s, "short file");
            continue;
        }
        if (rc < 0)
            return SN_ERR(-rc, "%s: read: %s", sp->dir, strerror(-rc));
        if (crc32c_update(0, sp->rbuf + 8, (size_t)n - 8) != crc) {
            seg_skip_rest(sp, s, "checksum mismatch");
            continue;
        }
        memset(e, 0, sizeof(*e));
        e->rec.type = (enum sn_rec_type)type;
        e->rec.key = klen ? (const char *)sp->rbuf + HDR : NULL;
        e->rec.keylen = klen;
        e->rec.data = (const char *)sp->rbuf + HDR + klen;
        e->rec.len = dlen;
        e->rec.seq = seq;
        e->seg = s->id;
        s->unsettled++;
        sp->rd_off += n;
        sp->st.replayed++;
        return 0;
    }
}

void sn_spool_settle(struct sn_spool *sp, uint64_t seg)
{
    struct seg *s = seg_find(sp, seg);
    if (!s || !s->unsettled)
        return;
    s->unsettled--;
    seg_maybe_delete(sp, s);
}

bool sn_spool_drained(const struct sn_spool *sp)
{
    for (size_t i = 0; i < sp->nsegs; i++) {
        const struct seg *s = &sp->segs[i];
        if (s->done)
            continue;
        uint64_t pos = (sp->rd_fd >= 0 && sp->rd_id == s->id) ? sp->rd_off : s->start;
        if (pos < s->size)
            return false;
    }
    return true;
}

uint64_t sn_spool_unsettled(const struct sn_spool *sp)
{
    uint64_t n = 0;
    for (size_t i = 0; i < sp->nsegs; i++)
        n += sp->segs[i].unsettled;
    return n;
}

uint64_t sn_spool_bytes(const struct sn_spool *sp)
{
    return sp->bytes;
}

void sn_spool_stats(const struct sn_spool *sp, struct sn_spool_stats *out)
{
    *out = sp->st;
    out->segments = sp->nsegs;
    out->bytes = sp->bytes;
}
