/* Host build of the sensor firmware: runs the portable core over a pty, a tty or stdio.
 *
 *   edgesplit_fw (--port PATH | --stdio) [--baud N] [--seed N] [--duration-ms N]
 *                [--device-id HEX] [--features FILE] [--corrupt-every N] [--tx-buffer BYTES]
 *
 * --features replays log-mel frames (int16 little-endian Q8.8, 40 per frame) instead of the
 * generated speech-like features; --corrupt-every flips a bit in every Nth frame (for tests);
 * --tx-buffer sizes the UART TX ring (default 2048 bytes, as a small MCU would have). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es_firmware.h"
#include "es_hal.h"
#include "hal_posix.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static int usage(const char *msg)
{
    fprintf(stderr,
            "error: %s\nusage: edgesplit_fw (--port PATH | --stdio) [--baud N] [--seed N] "
            "[--duration-ms N] [--device-id HEX] [--features FILE] [--corrupt-every N] "
            "[--tx-buffer BYTES]\n",
            msg);
    return 2;
}

static int16_t *load_features(const char *path, size_t *frames)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t frame_bytes = ES_MEL_BANDS * 2;
    if (size <= 0 || (size_t)size % frame_bytes) {
        fclose(f);
        return NULL;
    }
    uint8_t *raw = malloc((size_t)size);
    int16_t *vals = malloc((size_t)size);
    if (!raw || !vals || fread(raw, 1, (size_t)size, f) != (size_t)size) {
        free(raw);
        free(vals);
        fclose(f);
        return NULL;
    }
    fclose(f);
    for (long i = 0; i < size / 2; i++)
        vals[i] = (int16_t)es_get_u16(raw + 2 * i);
    free(raw);
    *frames = (size_t)size / frame_bytes;
    return vals;
}

int main(int argc, char **argv)
{
    const char *port = NULL, *features = NULL;
    int use_stdio = 0;
    unsigned long baud = 115200, seed = 1, duration = 0, device_id = 0xE5E50001ul, corrupt = 0,
                  tx_buffer = 2048;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (!strcmp(a, "--stdio")) { use_stdio = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage("help"); return 0; }
        if (!v) return usage("option needs a value");
        char *end = NULL;
        if (!strcmp(a, "--port")) port = v;
        else if (!strcmp(a, "--features")) features = v;
        else if (!strcmp(a, "--baud")) baud = strtoul(v, &end, 10);
        else if (!strcmp(a, "--seed")) seed = strtoul(v, &end, 10);
        else if (!strcmp(a, "--duration-ms")) duration = strtoul(v, &end, 10);
        else if (!strcmp(a, "--device-id")) device_id = strtoul(v, &end, 16);
        else if (!strcmp(a, "--corrupt-every")) corrupt = strtoul(v, &end, 10);
        else if (!strcmp(a, "--tx-buffer")) tx_buffer = strtoul(v, &end, 10);
        else return usage("unknown option");
        if (end && *end) return usage("option value is not a number");
        i++;
    }
    if (!port == !use_stdio)
        return usage("give exactly one of --port PATH or --stdio");
    if (baud < 1200 || baud > 4000000)
        return usage("--baud must be 1200..4000000 bits/s");
    if (tx_buffer < 64 || tx_buffer > 65536)
        return usage("--tx-buffer must be 64..65536 bytes");
    if (hal_posix_open(port, (uint32_t)baud, (size_t)tx_buffer) != 0) {
        fprintf(stderr, "error: cannot open %s\n", port);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    static es_fw fw;
    fw.corrupt_every = (uint32_t)corrupt;
    es_fw_start(&fw, (uint32_t)seed, (uint32_t)device_id, hal_millis());
    int16_t *replay = NULL;
    if (features) {
        replay = load_features(features, &fw.sensors.replay_frames);
        if (!replay) {
            fprintf(stderr, "error: %s is not a file of 40-band int16 log-mel frames\n", features);
            return 1;
        }
        fw.sensors.replay = replay;
    }
    struct timespec tick = {0, 1000000L}; /* 1 ms */
    while (!g_stop && !hal_posix_failed()) {
        uint32_t now = hal_millis();
        if (duration && now >= duration)
            break;
        es_fw_poll(&fw, now);
        hal_posix_service();
        nanosleep(&tick, NULL);
    }
    /* Let what is queued leave at the line rate (at most a ring's worth of time). */
    uint32_t drain_end = hal_millis() + 1000u;
    while (!hal_posix_failed() && hal_uart_tx_queued() > 0 && ES_DUE(drain_end, hal_millis())) {
        hal_posix_service();
        nanosleep(&tick, NULL);
    }
    free(replay);
    return hal_posix_failed() ? 1 : 0;
}
