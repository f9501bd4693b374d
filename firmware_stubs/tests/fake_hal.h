/* A scripted HAL for the C unit tests: a clock the test sets, a captured TX log (or a sink that
 * sees every frame as it is queued), an RX queue, and an optional TX ring drained at a baud rate
 * so that back-pressure can be tested. */
#ifndef FAKE_HAL_H
#define FAKE_HAL_H
#include <stddef.h>
#include <stdint.h>
extern uint32_t fake_now_ms;
extern uint8_t fake_tx[1 << 20];
extern size_t fake_tx_len;
/* When set, queued bytes go to the sink instead of fake_tx. */
extern void (*fake_tx_sink)(const uint8_t *buf, size_t len);
/* TX ring model: capacity 0 = unlimited and instantly sent. */
extern size_t fake_tx_capacity, fake_tx_queued;
extern uint32_t fake_baud;
void fake_reset(void);
void fake_rx_push(const uint8_t *buf, size_t len);
/* Let the line drain ms milliseconds' worth of bytes from the TX ring. */
void fake_line_drain(uint32_t ms);
#endif
