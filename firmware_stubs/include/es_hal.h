/* Hardware abstraction: the only functions the firmware core calls. A board port implements
 * them over its UART and timer; src/hal_posix.c implements them over a pty, a tty or stdio. */
#ifndef ES_HAL_H
#define ES_HAL_H

#include <stddef.h>
#include <stdint.h>

uint32_t hal_millis(void);                              /* ms since boot, wrapping */
size_t hal_uart_write(const uint8_t *buf, size_t len);  /* returns bytes accepted */
size_t hal_uart_read(uint8_t *buf, size_t cap);         /* non-blocking; 0 when none */

#endif
