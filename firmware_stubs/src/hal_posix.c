/* Host (POSIX) HAL: the UART is a file descriptor (a pty, a tty, or stdin/stdout). Like a UART
 * driver it has a TX ring buffer that the line drains at the configured baud rate (10 bits per
 * byte for 8N1; a pty ignores the baud rate, so the pacing is done here): writes never block, a
 * full ring is back-pressure the core sees and reports. If the reader stops reading, the kernel's
 * pty buffer fills and the ring stops draining (as with RTS/CTS flow control). */
#define _POSIX_C_SOURCE 200809L
#include "hal_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "es_hal.h"

static int g_in = -1, g_out = -1;
static uint32_t g_baud = 115200;
static double g_start_s, g_last_drain_s, g_credit_bytes;
static int g_write_failed;
static uint8_t g_ring[65536];
static size_t g_ring_cap = 2048, g_head, g_count; /* g_head: next byte to send */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int make_raw(int fd, uint32_t baud)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return 0; /* not a terminal (a pipe): nothing to configure */
    /* raw 8N1, as cfmakeraw() does (which is not POSIX) */
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    speed_t sp = B115200;
    switch (baud) {
    case 9600: sp = B9600; break;
    case 19200: sp = B19200; break;
    case 38400: sp = B38400; break;
    case 57600: sp = B57600; break;
    case 230400: sp = B230400; break;
    case 460800: sp = B460800; break;
    case 921600: sp = B921600; break;
    default: break;
    }
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    return tcsetattr(fd, TCSANOW, &t);
}

int hal_posix_open(const char *path, uint32_t baud, size_t tx_buffer_bytes)
{
    g_baud = baud ? baud : 115200;
    if (tx_buffer_bytes >= 64 && tx_buffer_bytes <= sizeof g_ring)
        g_ring_cap = tx_buffer_bytes;
    if (path) {
        int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
            return -1;
        if (make_raw(fd, g_baud) != 0) {
            close(fd);
            return -1;
        }
        g_in = g_out = fd;
    } else {
        g_in = STDIN_FILENO;
        g_out = STDOUT_FILENO;
        fcntl(g_in, F_SETFL, fcntl(g_in, F_GETFL) | O_NONBLOCK);
        fcntl(g_out, F_SETFL, fcntl(g_out, F_GETFL) | O_NONBLOCK);
    }
    g_start_s = g_last_drain_s = now_s();
    return 0;
}

int hal_posix_failed(void) { return g_write_failed; }

uint32_t hal_millis(void) { return (uint32_t)(uint64_t)((now_s() - g_start_s) * 1000.0); }

uint32_t hal_uart_baud(void) { return g_baud; }
size_t hal_uart_tx_queued(void) { return g_count; }
size_t hal_uart_tx_free(void) { return g_ring_cap - g_count; }

size_t hal_uart_write(const uint8_t *buf, size_t len)
{
    size_t room = g_ring_cap - g_count;
    if (len > room)
        len = room;
    for (size_t i = 0; i < len; i++)
        g_ring[(g_head + g_count + i) % g_ring_cap] = buf[i];
    g_count += len;
    return len;
}

void hal_posix_service(void)
{
    /* The line sends baud/10 bytes per second, whether or not this process was scheduled (a
     * UART runs in hardware), so time lost to a busy host is caught up; credit never exceeds
     * what is queued plus a 16-byte FIFO, so an idle line does not bank a burst. */
    double t = now_s();
    g_credit_bytes += (t - g_last_drain_s) * (double)g_baud / 10.0;
    g_last_drain_s = t;
    if (g_credit_bytes > 16.0 + (double)g_count)
        g_credit_bytes = 16.0 + (double)g_count;
    while (g_count > 0 && g_credit_bytes >= 1.0) {
        size_t n = (size_t)g_credit_bytes;
        if (n > g_count)
            n = g_count;
        if (n > g_ring_cap - g_head)
            n = g_ring_cap - g_head; /* up to the end of the ring; wrap on the next turn */
        ssize_t w = write(g_out, g_ring + g_head, n);
        if (w > 0) {
            g_head = (g_head + (size_t)w) % g_ring_cap;
            g_count -= (size_t)w;
            g_credit_bytes -= (double)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            return; /* the reader is not keeping up: hold the bytes */
        } else {
            g_write_failed = 1; /* peer gone (EIO on a closed pty) */
            return;
        }
    }
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    ssize_t r = read(g_in, buf, cap);
    return r > 0 ? (size_t)r : 0;
}
