#include "fake_hal.h"

#include <string.h>

#include "es_hal.h"

uint32_t fake_now_ms;
uint8_t fake_tx[1 << 20];
size_t fake_tx_len;
void (*fake_tx_sink)(const uint8_t *buf, size_t len);
size_t fake_tx_capacity, fake_tx_queued;
uint32_t fake_baud = 115200;
static uint8_t rx[1 << 16];
static size_t rx_head, rx_tail;
static uint32_t drain_credit_tenths; /* bits/10 carried between drains */

void fake_reset(void)
{
    fake_now_ms = 0;
    fake_tx_len = 0;
    fake_tx_sink = NULL;
    fake_tx_capacity = fake_tx_queued = 0;
    fake_baud = 115200;
    rx_head = rx_tail = 0;
    drain_credit_tenths = 0;
}

void fake_rx_push(const uint8_t *buf, size_t len)
{
    if (rx_tail + len > sizeof rx)
        return;
    memcpy(rx + rx_tail, buf, len);
    rx_tail += len;
}

void fake_line_drain(uint32_t ms)
{
    uint32_t bits = fake_baud * ms + drain_credit_tenths;
    size_t bytes = bits / 10000u; /* baud * ms / 1000 bits, 10 bits per byte */
    drain_credit_tenths = bits % 10000u;
    fake_tx_queued = bytes >= fake_tx_queued ? 0 : fake_tx_queued - bytes;
}

uint32_t hal_millis(void) { return fake_now_ms; }
uint32_t hal_uart_baud(void) { return fake_baud; }
size_t hal_uart_tx_queued(void) { return fake_tx_queued; }
size_t hal_uart_tx_free(void)
{
    return fake_tx_capacity ? fake_tx_capacity - fake_tx_queued : (size_t)1 << 20;
}

size_t hal_uart_write(const uint8_t *buf, size_t len)
{
    if (fake_tx_capacity) {
        if (len > fake_tx_capacity - fake_tx_queued)
            len = fake_tx_capacity - fake_tx_queued;
        fake_tx_queued += len;
    }
    if (fake_tx_sink) {
        fake_tx_sink(buf, len);
        return len;
    }
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
