/* spool: an on-disk queue of records that a sink could not deliver yet.
 *
 * A spool is a directory of append-only segment files named <16-digit id>.spool, replayed
 * in id order. Each entry is framed and checksummed (spool.c has the format), so a tail torn
 * by a crash or a full disk is detected on replay, counted in `corrupt`, and the rest of
 * that segment skipped: never fatal. The total size of the segment files is capped;
 * sn_spool_append returns -SN_EFULL rather than exceed it (the caller counts the drop and
 * logs it loudly).
 *
 * Replay is two-phase so nothing is lost between reading an entry and delivering it:
 * sn_spool_next hands out the next entry and notes its segment; the caller later calls
 * sn_spool_settle(seg) once that entry was delivered or durably re-appended. A segment file
 * is deleted when it has been read to its end and every entry read from it is settled.
 * sn_spool_close remembers how far a settled segment was read (<id>.off) so a clean restart
 * does not resend it; after a crash, entries read but not deleted are replayed again
 * (at-least-once).
 *
 * Appends go through write(2) without fsync (a process crash loses nothing, a power loss
 * may lose the last writes); close and segment rotation fdatasync.
 * One process per directory: open takes an flock on <dir>/lock (-EBUSY otherwise).
 * Ownership: the spool owns its memory and files; entry pointers are borrowed until the
 * next sn_spool_next/sn_spool_close. Thread safety: none; use from one thread.
 */
#ifndef SN_SPOOL_H
#define SN_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "sink.h"

/* A segment is closed and a new one started past this size (or max_bytes / 4 if smaller). */
#define SN_SPOOL_SEGMENT_BYTES (4u << 20)
/* Larger keys or payloads are refused on append and treated as corruption on replay. */
#define SN_SPOOL_MAX_KEY 4096u
#define SN_SPOOL_MAX_DATA (16u << 20)

struct sn_spool;

struct sn_spool_entry {
    struct sn_record rec; /* key and data borrowed from the spool */
    uint64_t seg;         /* pass to sn_spool_settle */
};

struct sn_spool_stats {
    uint64_t appended;  /* entries written */
    uint64_t replayed;  /* entries handed out by sn_spool_next */
    uint64_t full;      /* appends refused with -SN_EFULL */
    uint64_t corrupt;   /* torn or damaged regions skipped on replay */
    uint64_t segments;  /* segment files now on disk */
    uint64_t bytes;     /* bytes of segment files now on disk */
};

/* Opens (creating the directory and its parents if needed) a spool capped at max_bytes
 * (>= 4096). Existing segments are kept for replay. Returns owned, or NULL with the reason
 * in the error ring. */
struct sn_spool *sn_spool_open(const char *dir, uint64_t max_bytes);

/* Frees sp (NULL is fine) after syncing and writing the replay offset of the first segment
 * if every entry read from it was settled. */
void sn_spool_close(struct sn_spool *sp);

/* Appends a copy of r. Returns 0; -SN_EFULL when the cap would be exceeded; -EINVAL for an
 * oversize key or payload; -errno on an I/O error. */
int sn_spool_append(struct sn_spool *sp, const struct sn_record *r)
    __attribute__((warn_unused_result));

/* The next entry not yet handed out, oldest first. Returns 0 and fills e; -ENODATA when
 * every entry has been handed out; -errno on an I/O error. */
int sn_spool_next(struct sn_spool *sp, struct sn_spool_entry *e)
    __attribute__((warn_unused_result));

/* One entry handed out from segment seg is delivered or re-spooled. */
void sn_spool_settle(struct sn_spool *sp, uint64_t seg);

/* True when sn_spool_next has nothing more to hand out. */
bool sn_spool_drained(const struct sn_spool *sp);

/* Entries handed out and not yet settled. */
uint64_t sn_spool_unsettled(const struct sn_spool *sp);

/* Bytes of segment files on disk (what the cap is checked against). */
uint64_t sn_spool_bytes(const struct sn_spool *sp);

void sn_spool_stats(const struct sn_spool *sp, struct sn_spool_stats *out);

#endif
