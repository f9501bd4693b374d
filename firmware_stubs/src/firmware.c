/* Firmware core; see es_firmware.h and protocol/PROTOCOL.md. */
#include "es_firmware.h"

#include <string.h>

#include "es_hal.h"

/* Data frames may be dropped under back-pressure; control frames keep a reserve of the queue. */
static int is_control(uint8_t type)
{
    return type == ES_HELLO || type == ES_ACK || type == ES_NACK || type == ES_STATUS ||
           type == ES_LOG;
}

int es_fw_send(es_fw *fw, uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t wire[ES_MAX_WIRE];
    /* The frame takes its seq even when dropped, so the host sees the loss as a sequence gap
     * and STATUS tells it why. */
    size_t n = es_frame_encode(type, fw->tx_seq++, payload, len, wire);
    if (n == 0)
        return 0;
    fw->frames_sent++;
    fw->offered_bytes_interval += (uint32_t)n;
    if (fw->corrupt_every && fw->frames_sent % fw->corrupt_every == 0 && n > 3) {
        /* Flip one bit mid-frame, never creating a 0x00 (that would split the frame instead). */
        uint8_t flipped = (uint8_t)(wire[n / 2] ^ 0x10u);
        wire[n / 2] = flipped ? flipped : (uint8_t)(wire[n / 2] ^ 0x20u);
    }
    size_t need = n + (is_control(type) ? 0u : ES_TX_CONTROL_RESERVE);
    if (hal_uart_tx_free() < need) {
        fw->tx_dropped_frames++;
        fw->tx_dropped_bytes += (uint32_t)n;
        return 0;
    }
    size_t w = hal_uart_write(wire, n);
    fw->tx_bytes += (uint32_t)w;
    size_t queued = hal_uart_tx_queued();
    if (queued > fw->tx_peak_queued)
        fw->tx_peak_queued = (uint32_t)queued;
    if (w != n) { /* a HAL that took part of it: the frame is lost on the wire */
        fw->tx_dropped_frames++;
        fw->tx_dropped_bytes += (uint32_t)(n - w);
        return 0;
    }
    return 1;
}

static void send_log(es_fw *fw, uint8_t level, const char *text)
{
    uint8_t p[1 + 96];
    size_t len = strlen(text);
    if (len > 96)
        len = 96;
    p[0] = level;
    memcpy(p + 1, text, len);
    es_fw_send(fw, ES_LOG, p, 1 + len);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    es_put_u32(p, (uint32_t)v);
    es_put_u32(p + 4, (uint32_t)(v >> 32));
}

void es_fw_send_hello(es_fw *fw, uint8_t reason)
{
    uint8_t p[ES_HELLO_SIZE];
    es_put_u32(p, fw->device_id);
    p[4] = ES_FW_MAJOR;
    p[5] = ES_FW_MINOR;
    p[6] = ES_FW_PATCH;
    es_put_u16(p + 7, ES_ALL_STREAMS);
    es_put_u16(p + 9, fw->imu_rate_hz);
    es_put_u16(p + 11, ES_AUDIO_FPS);
    p[13] = ES_MEL_BANDS;
    es_put_u16(p + 14, fw->streams);
    put_u64(p + 16, fw->uptime_ms);
    p[24] = reason;
    es_fw_send(fw, ES_HELLO, p, sizeof p);
}

static uint16_t sat16(uint32_t v) { return v > 0xFFFFu ? 0xFFFFu : (uint16_t)v; }

static void send_status(es_fw *fw, uint32_t interval_ms)
{
    uint8_t p[ES_STATUS_SIZE];
    uint32_t queued = (uint32_t)hal_uart_tx_queued();
    uint32_t line = hal_uart_baud() / 10u; /* 8N1: 10 bits per byte */
    const es_counters *c = &fw->rx.counters;
    put_u64(p, fw->uptime_ms);
    es_put_u16(p + 8, sat16(queued));
    es_put_u16(p + 10, sat16(fw->tx_peak_queued));
    es_put_u16(p + 12, sat16(line ? (uint32_t)((uint64_t)queued * 1000u / line) : 0));
    es_put_u32(p + 14, line);
    es_put_u32(p + 18, interval_ms ? (uint32_t)((uint64_t)fw->offered_bytes_interval * 1000u /
                                                 interval_ms)
                                   : 0);
    es_put_u32(p + 22, fw->tx_dropped_frames);
    es_put_u32(p + 26, fw->tx_dropped_bytes);
    es_put_u32(p + 30, c->frames_ok);
    es_put_u32(p + 34, c->crc_errors + c->cobs_errors + c->length_errors + c->version_errors);
    es_put_u32(p + 38, c->unknown_types + c->payload_errors);
    es_put_u16(p + 42, fw->sched_resyncs);
    es_put_u16(p + 44, sat16(interval_ms));
    fw->offered_bytes_interval = 0;
    fw->tx_peak_queued = (uint32_t)queued;
    es_fw_send(fw, ES_STATUS, p, sizeof p);
}

void es_fw_start(es_fw *fw, uint32_t seed, uint32_t device_id, uint32_t now_ms)
{
    uint32_t corrupt = fw->corrupt_every;
    memset(fw, 0, sizeof *fw);
    fw->corrupt_every = corrupt;
    es_sensors_init(&fw->sensors, seed, now_ms);
    es_decoder_init(&fw->rx);
    fw->device_id = device_id;
    fw->streams = ES_ALL_STREAMS;
    fw->imu_rate_hz = fw->imu_batch_rate_hz = 50;
    fw->battery_rate_hz = 1;
    fw->now_ms = fw->last_ms = now_ms;
    fw->next_imu_ms = now_ms;
    fw->next_audio_ms = now_ms;
    fw->next_battery_ms = now_ms;
    fw->next_hello_ms = now_ms + ES_HELLO_INTERVAL_MS;
    fw->next_status_ms = now_ms + ES_STATUS_INTERVAL_MS;
    /* A lone delimiter first: it ends whatever frame a reset cut short on the line, so the
     * boot HELLO is not glued to that fragment and lost with it. */
    static const uint8_t delimiter = 0;
    fw->tx_bytes += (uint32_t)hal_uart_write(&delimiter, 1);
    es_fw_send_hello(fw, ES_HELLO_BOOT);
    send_log(fw, 1, "edgesplit sensor fw 1.1.0 boot");
}

static void reply(es_fw *fw, const es_frame *f, int ok, uint8_t reason)
{
    uint8_t p[4];
    es_put_u16(p, f->seq);
    p[2] = f->type;
    p[3] = reason;
    if (ok) {
        fw->commands_ok++;
        es_fw_send(fw, ES_ACK, p, 3);
    } else {
        fw->commands_rejected++;
        es_fw_send(fw, ES_NACK, p, 4);
    }
}

static void flush_imu(es_fw *fw)
{
    uint8_t p[7 + ES_IMU_SAMPLES_PER_BATCH * 12];
    es_put_u32(p, fw->imu_t0);
    es_put_u16(p + 4, fw->imu_batch_rate_hz);
    p[6] = fw->imu_count;
    for (uint8_t i = 0; i < fw->imu_count; i++)
        for (int k = 0; k < 6; k++)
            es_put_u16(p + 7 + i * 12 + k * 2, (uint16_t)fw->imu[i][k]);
    es_fw_send(fw, ES_IMU_BATCH, p, 7u + fw->imu_count * 12u);
    fw->imu_count = 0;
}

static void flush_audio(es_fw *fw)
{
    uint8_t p[6 + ES_AUDIO_FRAMES_PER_MSG * ES_MEL_BANDS * 2];
    es_put_u32(p, fw->audio_t0);
    p[4] = fw->audio_count;
    p[5] = ES_MEL_BANDS;
    size_t w = 6;
    for (uint8_t i = 0; i < fw->audio_count; i++)
        for (int b = 0; b < ES_MEL_BANDS; b++, w += 2)
            es_put_u16(p + w, (uint16_t)fw->audio[i][b]);
    es_fw_send(fw, ES_AUDIO_FEATURES, p, w);
    fw->audio_count = 0;
}

static void set_imu_rate(es_fw *fw, uint16_t rate)
{
    /* Samples taken at the old rate leave in their own (short) batch stamped with that rate;
     * the new schedule starts now. */
    if (fw->imu_count)
        flush_imu(fw);
    fw->imu_rate_hz = fw->imu_batch_rate_hz = rate;
    fw->next_imu_ms = fw->now_ms;
    fw->imu_frac_us = 0;
}

void es_fw_handle(es_fw *fw, const es_frame *f, int result)
{
    if (result == ES_PUSH_REJECTED) {
        if (f->type != ES_ACK && f->type != ES_NACK) /* never answer an answer */
            reply(fw, f, 0,
                  (uint8_t)es_payload_check(f->type, f->payload, f->len));
        return;
    }
    switch (f->type) {
    case ES_PING:
        reply(fw, f, 1, 0);
        break;
    case ES_GET_INFO:
        reply(fw, f, 1, 0);
        es_fw_send_hello(fw, ES_HELLO_REQUESTED);
        break;
    case ES_START_STREAM:
    case ES_STOP_STREAM: {
        uint16_t mask = es_get_u16(f->payload);
        if (mask & ~ES_ALL_STREAMS) {
            reply(fw, f, 0, ES_NACK_BAD_VALUE);
            break;
        }
        fw->streams = (f->type == ES_START_STREAM) ? (uint16_t)(fw->streams | mask)
                                                   : (uint16_t)(fw->streams & ~mask);
        reply(fw, f, 1, 0);
        break;
    }
    case ES_SET_RATE: {
        uint8_t stream = f->payload[0];
        uint16_t rate = es_get_u16(f->payload + 1);
        if (stream == ES_STREAM_IMU && rate >= 1 && rate <= 400) {
            set_imu_rate(fw, rate);
        } else if (stream == ES_STREAM_BATTERY && rate >= 1 && rate <= 10) {
            fw->battery_rate_hz = rate;
            fw->next_battery_ms = fw->now_ms;
        } else if (!(stream == ES_STREAM_AUDIO && rate == ES_AUDIO_FPS)) {
            reply(fw, f, 0, ES_NACK_BAD_VALUE);
            break;
        }
        reply(fw, f, 1, 0);
        break;
    }
    case ES_ACK:
    case ES_NACK:
        break;
    default: /* a well-formed MCU->host message sent to the MCU: not a command */
        reply(fw, f, 0, ES_NACK_UNKNOWN_TYPE);
    }
}

/* If a schedule fell more than ES_MAX_CATCHUP_MS behind (the poll loop was stalled), skip ahead
 * instead of emitting a burst of stale samples. */
static void resync_if_late(es_fw *fw, uint32_t *next, uint32_t now)
{
    if (ES_DUE(now, *next) && now - *next > ES_MAX_CATCHUP_MS) {
        *next = now;
        fw->sched_resyncs++;
    }
}

void es_fw_poll(es_fw *fw, uint32_t now_ms)
{
    uint8_t in[64];
    size_t n;
    es_frame frame;
    fw->now_ms = now_ms;
    fw->uptime_ms += (uint32_t)(now_ms - fw->last_ms); /* wrap-safe difference */
    while ((n = hal_uart_read(in, sizeof in)) > 0)
        for (size_t i = 0; i < n; i++) {
            int r = es_decoder_push(&fw->rx, in[i], &frame);
            if (r != ES_PUSH_NONE)
                es_fw_handle(fw, &frame, r);
        }

    /* IMU: the period in us is split into whole ms plus a carried remainder, so rates like
     * 3 Hz (333 333 us) do not drift and no u32 us count is ever formed. */
    resync_if_late(fw, &fw->next_imu_ms, now_ms);
    while (ES_DUE(now_ms, fw->next_imu_ms)) {
        uint32_t t = fw->next_imu_ms;
        if (fw->streams & (1u << ES_STREAM_IMU)) {
            if (fw->imu_count == 0)
                fw->imu_t0 = t;
            es_imu_sample(&fw->sensors, t, fw->imu[fw->imu_count++]);
            if (fw->imu_count == ES_IMU_SAMPLES_PER_BATCH)
                flush_imu(fw);
        } else {
            fw->imu_count = 0;
        }
        fw->imu_frac_us += 1000000u / fw->imu_rate_hz;
        fw->next_imu_ms += fw->imu_frac_us / 1000u;
        fw->imu_frac_us %= 1000u;
    }
    resync_if_late(fw, &fw->next_audio_ms, now_ms);
    while (ES_DUE(now_ms, fw->next_audio_ms)) {
        uint32_t t = fw->next_audio_ms;
        if (fw->streams & (1u << ES_STREAM_AUDIO)) {
            if (fw->audio_count == 0)
                fw->audio_t0 = t;
            es_audio_frame(&fw->sensors, t, fw->audio[fw->audio_count++]);
            if (fw->audio_count == ES_AUDIO_FRAMES_PER_MSG)
                flush_audio(fw);
        } else {
            fw->audio_count = 0;
        }
        fw->next_audio_ms += 1000u / ES_AUDIO_FPS;
    }
    /* Button: poll every elapsed millisecond so that no edge is missed. */
    uint32_t elapsed = now_ms - fw->last_ms;
    if (elapsed > ES_MAX_CATCHUP_MS)
        elapsed = ES_MAX_CATCHUP_MS;
    for (uint32_t i = elapsed; i > 0; i--) {
        uint32_t t = now_ms - i + 1u;
        int ev = es_button_poll(&fw->sensors, t);
        if (ev && (fw->streams & (1u << ES_STREAM_BUTTON))) {
            uint8_t p[6];
            es_put_u32(p, t);
            p[4] = 0;
            p[5] = (uint8_t)ev;
            es_fw_send(fw, ES_BUTTON, p, sizeof p);
        }
    }
    fw->last_ms = now_ms;
    resync_if_late(fw, &fw->next_battery_ms, now_ms);
    if (ES_DUE(now_ms, fw->next_battery_ms)) {
        if (fw->streams & (1u << ES_STREAM_BATTERY)) {
            uint8_t p[11];
            uint16_t mv, soc;
            uint8_t charging;
            int16_t temp;
            es_battery_read(&fw->sensors, now_ms, &mv, &soc, &charging, &temp);
            es_put_u32(p, now_ms);
            es_put_u16(p + 4, mv);
            es_put_u16(p + 6, soc);
            p[8] = charging;
            es_put_u16(p + 9, (uint16_t)temp);
            es_fw_send(fw, ES_BATTERY, p, sizeof p);
        }
        fw->next_battery_ms += 1000u / fw->battery_rate_hz;
    }
    if (ES_DUE(now_ms, fw->next_status_ms)) {
        uint32_t interval = ES_STATUS_INTERVAL_MS + (now_ms - fw->next_status_ms);
        if (fw->streams & (1u << ES_STREAM_STATUS))
            send_status(fw, interval);
        else
            fw->offered_bytes_interval = 0;
        fw->next_status_ms = now_ms + ES_STATUS_INTERVAL_MS;
    }
    if (ES_DUE(now_ms, fw->next_hello_ms)) {
        if (fw->streams & (1u << ES_STREAM_STATUS))
            es_fw_send_hello(fw, ES_HELLO_PERIODIC);
        fw->next_hello_ms = now_ms + ES_HELLO_INTERVAL_MS;
    }
}
