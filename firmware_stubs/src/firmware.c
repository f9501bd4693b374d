/* Firmware core; see es_firmware.h and protocol/PROTOCOL.md. */
#include "es_firmware.h"

#include <string.h>

#include "es_hal.h"

int es_fw_send(es_fw *fw, uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t wire[ES_MAX_WIRE];
    size_t n = es_frame_encode(type, fw->tx_seq++, payload, len, wire);
    if (n == 0)
        return 0;
    fw->frames_sent++;
    if (fw->corrupt_every && fw->frames_sent % fw->corrupt_every == 0 && n > 3) {
        /* Flip one bit mid-frame, never creating a 0x00 (that would split the frame instead). */
        uint8_t flipped = (uint8_t)(wire[n / 2] ^ 0x10u);
        wire[n / 2] = flipped ? flipped : (uint8_t)(wire[n / 2] ^ 0x20u);
    }
    return hal_uart_write(wire, n) == n;
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

static void send_hello(es_fw *fw)
{
    uint8_t p[14];
    es_put_u32(p, fw->device_id);
    p[4] = ES_FW_MAJOR;
    p[5] = ES_FW_MINOR;
    p[6] = ES_FW_PATCH;
    es_put_u16(p + 7, ES_ALL_STREAMS);
    es_put_u16(p + 9, fw->imu_rate_hz);
    es_put_u16(p + 11, ES_AUDIO_FPS);
    p[13] = ES_MEL_BANDS;
    es_fw_send(fw, ES_HELLO, p, sizeof p);
}

void es_fw_start(es_fw *fw, uint32_t seed, uint32_t device_id, uint32_t now_ms)
{
    uint32_t corrupt = fw->corrupt_every;
    memset(fw, 0, sizeof *fw);
    fw->corrupt_every = corrupt;
    es_sensors_init(&fw->sensors, seed);
    es_decoder_init(&fw->rx);
    fw->device_id = device_id;
    fw->streams = ES_ALL_STREAMS;
    fw->imu_rate_hz = 50;
    fw->battery_rate_hz = 1;
    fw->last_ms = now_ms;
    fw->next_imu_us = now_ms * 1000u;
    fw->next_audio_ms = now_ms;
    fw->next_battery_ms = now_ms;
    send_hello(fw);
    send_log(fw, 1, "edgesplit sensor fw 1.0.0 boot");
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

void es_fw_handle(es_fw *fw, const es_frame *f)
{
    switch (f->type) {
    case ES_PING:
        reply(fw, f, f->len == 4, ES_NACK_BAD_PAYLOAD);
        break;
    case ES_START_STREAM:
    case ES_STOP_STREAM:
        if (f->len != 2) {
            reply(fw, f, 0, ES_NACK_BAD_PAYLOAD);
        } else {
            uint16_t mask = es_get_u16(f->payload);
            if (mask & ~ES_ALL_STREAMS) {
                reply(fw, f, 0, ES_NACK_BAD_VALUE);
                break;
            }
            fw->streams = (f->type == ES_START_STREAM) ? (fw->streams | mask) : (fw->streams & ~mask);
            reply(fw, f, 1, 0);
        }
        break;
    case ES_SET_RATE: {
        if (f->len != 3) {
            reply(fw, f, 0, ES_NACK_BAD_PAYLOAD);
            break;
        }
        uint8_t stream = f->payload[0];
        uint16_t rate = es_get_u16(f->payload + 1);
        if (stream == ES_STREAM_IMU && rate >= 1 && rate <= 400) {
            fw->imu_rate_hz = rate;
        } else if (stream == ES_STREAM_BATTERY && rate >= 1 && rate <= 10) {
            fw->battery_rate_hz = rate;
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
    default:
        reply(fw, f, 0, ES_NACK_UNKNOWN_TYPE);
    }
}

static void flush_imu(es_fw *fw)
{
    uint8_t p[7 + ES_IMU_SAMPLES_PER_BATCH * 12];
    es_put_u32(p, fw->imu_t0);
    es_put_u16(p + 4, fw->imu_rate_hz);
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

void es_fw_poll(es_fw *fw, uint32_t now_ms)
{
    uint8_t in[64];
    size_t n;
    es_frame frame;
    while ((n = hal_uart_read(in, sizeof in)) > 0)
        for (size_t i = 0; i < n; i++)
            if (es_decoder_push(&fw->rx, in[i], &frame))
                es_fw_handle(fw, &frame);

    /* IMU: sample on a microsecond schedule so that rates like 3 Hz do not drift. */
    while (fw->next_imu_us / 1000u <= now_ms) {
        uint32_t t = fw->next_imu_us / 1000u;
        if (fw->streams & (1u << ES_STREAM_IMU)) {
            if (fw->imu_count == 0)
                fw->imu_t0 = t;
            es_imu_sample(&fw->sensors, t, fw->imu[fw->imu_count++]);
            if (fw->imu_count == ES_IMU_SAMPLES_PER_BATCH)
                flush_imu(fw);
        } else {
            fw->imu_count = 0;
        }
        fw->next_imu_us += 1000000u / fw->imu_rate_hz;
    }
    while (fw->next_audio_ms <= now_ms) {
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
    for (uint32_t t = fw->last_ms + 1; t <= now_ms; t++) {
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
    if (now_ms >= fw->next_battery_ms) {
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
        fw->next_battery_ms = now_ms + 1000u / fw->battery_rate_hz;
    }
}
