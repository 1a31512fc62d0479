/* Gives a fuzz input a path, for the engine readers that open files
 * themselves (bfn_model_load, bfn_idx_load): an anonymous in-memory file
 * (memfd) opened through /proc/self/fd. Nothing is left on disk, even when
 * the fuzzer stops on a crash. Linux only, like the fuzzing itself. */
#ifndef BFN_FUZZ_FILE_H
#define BFN_FUZZ_FILE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int fd;
    char path[64];
} fuzz_file;

/* Creates the in-memory file; exits on failure (a harness, not the engine). */
static inline void fuzz_file_open(fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, 0);
    if (f->fd < 0) {
        perror("memfd_create");
        exit(1);
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's content with (data, len). */
static inline void fuzz_file_set(fuzz_file *f, const uint8_t *data, size_t len)
{
    if (ftruncate(f->fd, 0) != 0 || (len && pwrite(f->fd, data, len, 0) != (ssize_t)len)) {
        perror("fuzz_file_set");
        exit(1);
    }
}

/* Where harnesses put the files they need by name: /dev/shm when it is a
 * writable directory (tmpfs: rewriting a file there never waits on a disk,
 * and fsync is free), else $TMPDIR or /tmp. */
static inline const char *fuzz_scratch_base(void)
{
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    const char *tmp = getenv("TMPDIR");
    return tmp && *tmp ? tmp : "/tmp";
}

#endif
