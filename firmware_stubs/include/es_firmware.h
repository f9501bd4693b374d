/* The firmware core: sensor scheduling, message encoding, command handling. Portable C99; talks to
 * the outside only through es_hal.h. */
#ifndef ES_FIRMWARE_H
#define ES_FIRMWARE_H

#include "es_proto.h"
#include "es_sensors.h"

#define ES_FW_MAJOR 1
#define ES_FW_MINOR 0
#define ES_FW_PATCH 0
#define ES_IMU_SAMPLES_PER_BATCH 10 /* samples per IMU_BATCH message */
#define ES_AUDIO_FRAMES_PER_MSG 5 /* 20 ms frames per AUDIO_FEATURES message (100 ms) */
#define ES_AUDIO_FPS 50           /* fixed by the 20 ms hop of the feature front end */
#define ES_ALL_STREAMS 0x1Fu

typedef struct {
    es_sensors sensors;
    es_decoder rx;
    uint32_t device_id;
    uint16_t tx_seq;
    uint16_t streams; /* enabled stream bit mask */
    uint16_t imu_rate_hz, battery_rate_hz;
    uint32_t next_imu_us, next_audio_ms, next_battery_ms, last_ms;
    int16_t imu[ES_IMU_SAMPLES_PER_BATCH][6];
    uint32_t imu_t0;
    uint8_t imu_count;
    int16_t audio[ES_AUDIO_FRAMES_PER_MSG][ES_MEL_BANDS];
    uint32_t audio_t0;
    uint8_t audio_count;
    uint32_t corrupt_every, frames_sent; /* test hook: corrupt every Nth frame (0 = never) */
    uint32_t commands_ok, commands_rejected;
} es_fw;

/* Initialise and send HELLO and a boot LOG; all streams start enabled. */
void es_fw_start(es_fw *fw, uint32_t seed, uint32_t device_id, uint32_t now_ms);
/* Handle received bytes and emit every sample and message due up to now_ms. */
void es_fw_poll(es_fw *fw, uint32_t now_ms);
/* Encode and send one message; returns 1 if the HAL accepted all bytes. */
int es_fw_send(es_fw *fw, uint8_t type, const uint8_t *payload, size_t len);
/* Process one received frame (exposed for tests). */
void es_fw_handle(es_fw *fw, const es_frame *frame);

#endif
