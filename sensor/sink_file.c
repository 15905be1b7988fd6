#define SN_LOG_MOD "sink_file"
/* The NDJSON sink: records to a file (-o FILE) or stdout, one per line, in order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "sink.h"

struct file_priv {
    FILE *fp;
    char *path;
    char *buf;
    bool own;
};

static int file_open(struct sn_sink *s, const struct sn_config *cfg)
{
    struct file_priv *fp = calloc(1, sizeof(*fp));
    if (!fp)
        return SN_ERR(ENOMEM, "out of memory");
    s->priv = fp;
    const char *path = cfg->output && strcmp(cfg->output, "-") ? cfg->output : NULL;
    fp->path = strdup(path ? path : "(stdout)");
    if (path) {
        fp->fp = fopen(path, "w");
        if (!fp->fp)
            return SN_ERR(SN_ECONFIG, "--output: %s: %s", path, strerror(errno));
        fp->own = true;
    } else {
        fp->fp = stdout;
    }
    /* Large buffer: records are written in bulk; the flush at exit makes them durable. */
    fp->buf = malloc(1 << 20);
    if (fp->buf)
        setvbuf(fp->fp, fp->buf, _IOFBF, 1 << 20);
    return 0;
}

static int file_emit(struct sn_sink *s, const struct sn_record *r)
{
    struct file_priv *fp = s->priv;
    if (fwrite(r->data, 1, r->len, fp->fp) != r->len)
        return SN_ERR(errno ? errno : EIO, "%s: write: %s", fp->path, strerror(errno ? errno : EIO));
    return 0;
}

static int file_flush(struct sn_sink *s, int timeout_ms)
{
    (void)timeout_ms;
    struct file_priv *fp = s->priv;
    if (fflush(fp->fp) != 0)
        return SN_ERR(errno, "%s: write: %s", fp->path, strerror(errno));
    return 0;
}

static void file_close(struct sn_sink *s)
{
    struct file_priv *fp = s->priv;
    if (!fp)
        return;
    if (fp->fp) {
        fflush(fp->fp);
        if (fp->own)
            fclose(fp->fp);
        else
            setvbuf(fp->fp, NULL, _IONBF, 0); /* before the buffer goes away */
    }
    free(fp->buf);
    free(fp->path);
    free(fp);
    s->priv = NULL;
}

const struct sn_sink_ops sn_sink_file_ops = {
    .name = "file",
    .open = file_open,
    .emit = file_emit,
    .flush = file_flush,
    .close = file_close,
};
