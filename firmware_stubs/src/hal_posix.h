#ifndef HAL_POSIX_H
#define HAL_POSIX_H
#include <stdint.h>
/* Open path (a pty/tty) or, with path == NULL, use stdin/stdout. Returns 0 on success. */
int hal_posix_open(const char *path, uint32_t baud);
/* 1 once a write failed because the other side went away. */
int hal_posix_failed(void);
#endif
