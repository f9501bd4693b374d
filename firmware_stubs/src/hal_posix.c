/* Host (POSIX) HAL: the UART is a file descriptor (a pty, a tty, or stdin/stdout), paced at the
 * configured baud rate (10 bits per byte for 8N1) because a pty ignores the baud rate. */
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
static double g_start_s, g_line_free_s;
static int g_write_failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
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

int hal_posix_open(const char *path, uint32_t baud)
{
    g_baud = baud ? baud : 115200;
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
    }
    g_start_s = g_line_free_s = now_s();
    return 0;
}

int hal_posix_failed(void) { return g_write_failed; }

uint32_t hal_millis(void) { return (uint32_t)((now_s() - g_start_s) * 1000.0); }

size_t hal_uart_write(const uint8_t *buf, size_t len)
{
    /* The line carries baud/10 bytes per second: wait until these bytes would have left. */
    double t = now_s();
    if (g_line_free_s < t)
        g_line_free_s = t;
    g_line_free_s += (double)len * 10.0 / (double)g_baud;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(g_out, buf + done, len - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            sleep_s(0.001);
        } else {
            g_write_failed = 1; /* peer gone (EIO on a closed pty) */
            return done;
        }
    }
    sleep_s(g_line_free_s - now_s());
    return done;
}

size_t hal_uart_read(uint8_t *buf, size_t cap)
{
    ssize_t r = read(g_in, buf, cap);
    return r > 0 ? (size_t)r : 0;
}
