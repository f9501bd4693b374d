#ifndef HAL_POSIX_H
#define HAL_POSIX_H
#include <stddef.h>
#include <stdint.h>
/* Open path (a pty/tty) or, with path == NULL, use stdin/stdout. tx_buffer_bytes sizes the TX
 * ring (64..65536; 0 = the default 2048). Returns 0 on success. */
int hal_posix_open(const char *path, uint32_t baud, size_t tx_buffer_bytes);
/* Move queued TX bytes to the fd at the line rate; call every loop turn (~1 ms). */
void hal_posix_service(void);
/* 1 once a write failed because the other side went away. */
int hal_posix_failed(void);
#endif
