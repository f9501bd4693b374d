/* libFuzzer harness: the whole firmware core (command handler, schedules, TX queue) driven by
 * arbitrary host bytes and clock steps. Input: byte 0 picks the TX ring size and baud, byte 1 the
 * start of the clock (near the u32 us and ms wrap points too), then chunks of
 * [step_ms:u8][len:u8][len bytes of RX]. Checks: no crash/UB, and everything the firmware sends
 * decodes as valid frames (it must never put a bad frame on the wire) in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es_firmware.h"
#include "es_hal.h"

static uint32_t g_now;
static const uint8_t *g_rx;
static size_t g_rx_len;
static size_t g_cap, g_queued;
static uint32_t g_baud;
static es_decoder g_out;

uint32_t hal_millis(void) { return g_now; }
uint32_t hal_uart_baud(void) { return g_baud; }
size_t hal_uart_tx_queued(void) { return g_queued; }
size_t hal_uart_tx_free(void) { return g_cap - g_queued; }

size_t hal_uart_write(const uint8_t *buf, size_t len)
{
    if (len > g_cap - g_queued)
        len = g_cap - g_queued;
    g_queued += len;
    es_frame fr;
    for (size_t i = 0; i < len; i++)
        if (es_decoder_push(&g_out, buf[i], &fr) == ES_PUSH_REJECTED)
            abort(); /* the firmware sent a frame the spec rejects */
    return len;
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    size_t n = g_rx_len < cap ? g_rx_len : cap;
    memcpy(buf, g_rx, n);
    g_rx += n;
    g_rx_len -= n;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static es_fw fw;
    static const uint32_t starts[4] = {0u, 4294967u - 300u, 0xFFFFFFFFu - 300u, 123456u};
    if (size < 2)
        return 0;
    g_cap = 256u + 256u * (data[0] & 15u);
    g_baud = (data[0] & 0x10u) ? 57600u : 115200u;
    g_now = starts[data[1] & 3u];
    g_queued = 0;
    g_rx_len = 0;
    es_decoder_init(&g_out);
    memset(&fw, 0, sizeof fw);
    es_fw_start(&fw, data[1], 0xF022u, g_now);
    size_t i = 2;
    while (i + 2 <= size) {
        uint32_t step = data[i];
        size_t len = data[i + 1];
        i += 2;
        if (len > size - i)
            len = size - i;
        g_rx = data + i;
        g_rx_len = len;
        i += len;
        for (uint32_t s = 0; s <= step; s += 8) { /* advance up to 255 ms, in 8-ms polls */
            g_now += s == 0 ? 0 : 8;
            uint32_t drained = g_baud / 10u * 8u / 1000u;
            g_queued = g_queued > drained ? g_queued - drained : 0;
            es_fw_poll(&fw, g_now);
        }
    }
    const es_counters *c = &g_out.counters;
    if (c->crc_errors || c->cobs_errors || c->length_errors || c->version_errors || c->seq_gaps > fw.tx_dropped_frames)
        abort();
    return 0;
}
