/* Hardware abstraction: the only functions the firmware core calls. A board port implements
 * them over its UART and timer (src/hal_cortexm.c: CMSDK UART + SysTick); src/hal_posix.c
 * implements them over a pty, a tty or stdio, paced at the baud rate. */
#ifndef ES_HAL_H
#define ES_HAL_H

#include <stddef.h>
#include <stdint.h>

uint32_t hal_millis(void);                              /* ms since boot, wrapping at 2^32 */
size_t hal_uart_write(const uint8_t *buf, size_t len);  /* queue bytes; returns bytes accepted */
size_t hal_uart_read(uint8_t *buf, size_t cap);         /* non-blocking; 0 when none */
/* TX queue (the UART's ring buffer): bytes waiting for the line, and room left. The core only
 * queues whole frames, so a frame that does not fit is dropped (and counted), never cut. */
size_t hal_uart_tx_queued(void);
size_t hal_uart_tx_free(void);
uint32_t hal_uart_baud(void);                           /* line rate in bits/s (8N1: /10 bytes/s) */

#endif
