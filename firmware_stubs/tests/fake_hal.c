#include "fake_hal.h"

#include <string.h>

#include "es_hal.h"

uint32_t fake_now_ms;
uint8_t fake_tx[1 << 20];
size_t fake_tx_len;
static uint8_t rx[4096];
static size_t rx_head, rx_tail;

void fake_reset(void) { fake_now_ms = 0; fake_tx_len = 0; rx_head = rx_tail = 0; }

void fake_rx_push(const uint8_t *buf, size_t len)
{
    memcpy(rx + rx_tail, buf, len);
    rx_tail += len;
}

uint32_t hal_millis(void) { return fake_now_ms; }

size_t hal_uart_write(const uint8_t *buf, size_t len)
{
    if (fake_tx_len + len > sizeof fake_tx)
        return 0;
    memcpy(fake_tx + fake_tx_len, buf, len);
    fake_tx_len += len;
    return len;
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    size_t n = rx_tail - rx_head;
    if (n > cap)
        n = cap;
    memcpy(buf, rx + rx_head, n);
    rx_head += n;
    return n;
}
