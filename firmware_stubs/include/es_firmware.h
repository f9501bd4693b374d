/* The firmware core: sensor scheduling, message encoding, command handling. Portable C99; talks to
 * the outside only through es_hal.h.
 *
 * Time: the core is fed the HAL's wrapping u32 millisecond clock and only ever compares two
 * instants through their u32 difference (ES_DUE), so it runs across the 49.7-day u32 ms wrap and
 * never forms a u32 count of microseconds (which wraps after 71.6 min). Uptime is kept in u64 ms. */
#ifndef ES_FIRMWARE_H
#define ES_FIRMWARE_H

#include "es_proto.h"
#include "es_sensors.h"

#define ES_FW_MAJOR 1
#define ES_FW_MINOR 1
#define ES_FW_PATCH 0
#define ES_IMU_SAMPLES_PER_BATCH 10 /* samples per IMU_BATCH message */
#define ES_AUDIO_FRAMES_PER_MSG 5   /* 20 ms frames per AUDIO_FEATURES message (100 ms) */
#define ES_AUDIO_FPS 50             /* fixed by the 20 ms hop of the feature front end */
#define ES_ALL_STREAMS 0x3Fu        /* IMU, BUTTON, BATTERY, AUDIO, LOG, STATUS */
#define ES_HELLO_INTERVAL_MS 5000u  /* HELLO re-sent this often (STATUS stream on) */
#define ES_STATUS_INTERVAL_MS 1000u /* STATUS (uptime, TX backlog, drops) this often */
#define ES_MAX_CATCHUP_MS 1000u     /* a schedule further behind than this skips ahead */
#define ES_TX_CONTROL_RESERVE 64u   /* TX queue bytes kept free for ACK/NACK/HELLO/STATUS/LOG */

/* True when instant `now` has reached instant `due` on the wrapping u32 ms clock (valid while
 * the two are less than 24.8 days apart). */
#define ES_DUE(now, due) ((uint32_t)((uint32_t)(now) - (uint32_t)(due)) < 0x80000000u)

enum es_hello_reason { ES_HELLO_BOOT = 0, ES_HELLO_PERIODIC = 1, ES_HELLO_REQUESTED = 2 };

typedef struct {
    es_sensors sensors;
    es_decoder rx;
    uint32_t device_id;
    uint16_t tx_seq;
    uint16_t streams; /* enabled stream bit mask */
    uint16_t imu_rate_hz, battery_rate_hz;
    uint32_t now_ms, last_ms; /* HAL clock at this and the previous poll */
    uint64_t uptime_ms;       /* since es_fw_start, summed from wrap-safe differences */
    uint32_t next_imu_ms, imu_frac_us; /* IMU schedule: ms plus a sub-ms remainder */
    uint32_t next_audio_ms, next_battery_ms, next_hello_ms, next_status_ms;
    int16_t imu[ES_IMU_SAMPLES_PER_BATCH][6];
    uint32_t imu_t0;
    uint16_t imu_batch_rate_hz; /* the rate the samples in imu[] were taken at */
    uint8_t imu_count;
    int16_t audio[ES_AUDIO_FRAMES_PER_MSG][ES_MEL_BANDS];
    uint32_t audio_t0;
    uint8_t audio_count;
    uint32_t corrupt_every, frames_sent; /* test hook: corrupt every Nth frame (0 = never) */
    uint32_t commands_ok, commands_rejected;
    /* back-pressure */
    uint32_t tx_bytes, tx_dropped_frames, tx_dropped_bytes, offered_bytes_interval;
    uint32_t tx_peak_queued;
    uint16_t sched_resyncs;
} es_fw;

/* Initialise and send HELLO (seq 0, reason boot) and a boot LOG; all streams start enabled. */
void es_fw_start(es_fw *fw, uint32_t seed, uint32_t device_id, uint32_t now_ms);
/* Handle received bytes and emit every sample and message due up to now_ms (the HAL's
 * wrapping ms clock; call at least every few ms). */
void es_fw_poll(es_fw *fw, uint32_t now_ms);
/* Encode and queue one message; returns 1 if queued, 0 if dropped (TX queue full, counted). */
int es_fw_send(es_fw *fw, uint8_t type, const uint8_t *payload, size_t len);
/* Process one received frame (exposed for tests and the fuzz harness); `result` is what
 * es_decoder_push returned for it (ES_PUSH_FRAME or ES_PUSH_REJECTED). */
void es_fw_handle(es_fw *fw, const es_frame *frame, int result);
/* Send HELLO now (reason: es_hello_reason). */
void es_fw_send_hello(es_fw *fw, uint8_t reason);

#endif
