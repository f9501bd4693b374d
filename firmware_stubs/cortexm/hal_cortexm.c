/* Bare-metal HAL for a Cortex-M4 board (ARM MPS2 AN386, as QEMU emulates it): SysTick at 1 kHz for
 * hal_millis, the CMSDK APB UART0 with an RX interrupt into a ring buffer, and a TX ring drained
 * at the configured line rate from the main loop (as a DMA/IRQ-driven UART driver would). No
 * vendor headers: the few registers used are defined here. */
#include <stddef.h>
#include <stdint.h>

#include "es_hal.h"
#include "hal_cortexm.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
/* CMSDK APB UART0 */
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00)
#define UART_STATE REG(UART0 + 0x04)
#define UART_CTRL REG(UART0 + 0x08)
#define UART_INTSTATUS REG(UART0 + 0x0C)
#define UART_BAUDDIV REG(UART0 + 0x10)
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u
#define CTRL_TXEN 1u
#define CTRL_RXEN 2u
#define CTRL_RXINTEN 8u
#define INT_RX 2u
/* System control */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER0 REG(0xE000E100u)
#define UART0_RX_IRQ 0u
#define CORE_CLOCK_HZ 25000000u /* MPS2 FPGA images run the core at 25 MHz */

static volatile uint32_t g_ms;
static uint32_t g_baud = 115200;
static volatile uint8_t g_rx[512];
static volatile uint32_t g_rx_head, g_rx_tail; /* written by the ISR / by the main loop */
static uint8_t g_tx[ES_CORTEXM_TX_RING];
static size_t g_tx_head, g_tx_count;
static uint32_t g_credit_tenths, g_last_ms; /* line credit in 1/10000 byte */

void SysTick_Handler(void) { g_ms++; }

void UART0RX_Handler(void)
{
    /* Clear first, then drain: a byte that lands after the last RXFULL check sets the status
     * again and re-enters here. Clearing after the loop lost that interrupt, and with it the
     * receiver for good (the UART holds no second byte while RXFULL is set): commands went
     * unanswered once in ~30 runs under QEMU on a loaded host. */
    UART_INTSTATUS = INT_RX;
    while (UART_STATE & STATE_RXFULL) {
        uint8_t b = (uint8_t)UART_DATA;
        uint32_t next = (g_rx_head + 1u) % sizeof g_rx;
        if (next != g_rx_tail) { /* a full ring drops the byte (the decoder resynchronises) */
            g_rx[g_rx_head] = b;
            g_rx_head = next;
        }
    }
}

void hal_cortexm_init(uint32_t baud)
{
    g_baud = baud;
    UART_BAUDDIV = CORE_CLOCK_HZ / baud;
    UART_CTRL = CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    SYST_RVR = CORE_CLOCK_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* core clock, interrupt, enable */
}

uint32_t hal_millis(void) { return g_ms; }
uint32_t hal_uart_baud(void) { return g_baud; }
size_t hal_uart_tx_queued(void) { return g_tx_count; }
size_t hal_uart_tx_free(void) { return sizeof g_tx - g_tx_count; }

size_t hal_uart_write(const uint8_t *buf, size_t len)
{
    size_t room = sizeof g_tx - g_tx_count;
    if (len > room)
        len = room;
    for (size_t i = 0; i < len; i++)
        g_tx[(g_tx_head + g_tx_count + i) % sizeof g_tx] = buf[i];
    g_tx_count += len;
    return len;
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap && g_rx_tail != g_rx_head) {
        buf[n++] = g_rx[g_rx_tail];
        g_rx_tail = (g_rx_tail + 1u) % sizeof g_rx;
    }
    return n;
}

void hal_cortexm_service(void)
{
    /* baud/10 bytes per second = baud bytes per 10 000 ms-tenths; a 16-byte burst at most */
    uint32_t now = g_ms, elapsed = now - g_last_ms;
    g_last_ms = now;
    if (elapsed > 100u)
        elapsed = 100u;
    g_credit_tenths += g_baud * elapsed;
    if (g_tx_count == 0 && g_credit_tenths > 16u * 10000u)
        g_credit_tenths = 16u * 10000u;
    while (g_tx_count > 0 && g_credit_tenths >= 10000u && !(UART_STATE & STATE_TXFULL)) {
        UART_DATA = g_tx[g_tx_head];
        g_tx_head = (g_tx_head + 1u) % sizeof g_tx;
        g_tx_count--;
        g_credit_tenths -= 10000u;
    }
}
