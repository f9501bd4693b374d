/* A scripted HAL for the C unit tests: a clock the test sets, a captured TX log, an RX queue. */
#ifndef FAKE_HAL_H
#define FAKE_HAL_H
#include <stddef.h>
#include <stdint.h>
extern uint32_t fake_now_ms;
extern uint8_t fake_tx[1 << 20];
extern size_t fake_tx_len;
void fake_reset(void);
void fake_rx_push(const uint8_t *buf, size_t len);
#endif
