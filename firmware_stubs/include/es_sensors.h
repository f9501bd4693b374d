/* Generated sensor signals: IMU with head nod/shake gestures, button presses, battery drain and
 * speech-like log-mel audio features (or frames replayed from a file). Deterministic per seed. */
#ifndef ES_SENSORS_H
#define ES_SENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ES_MEL_BANDS 40

enum es_gesture { ES_GESTURE_NONE = 0, ES_GESTURE_NOD = 1, ES_GESTURE_SHAKE = 2 };
enum es_button_event { ES_BUTTON_PRESS = 1, ES_BUTTON_RELEASE = 2, ES_BUTTON_LONG_PRESS = 3 };

typedef struct {
    uint32_t rng;
    /* gestures */
    int gesture;
    uint32_t gesture_start_ms, next_gesture_ms;
    /* button */
    int button_down, long_sent;
    uint32_t button_down_ms, button_up_ms, next_press_ms;
    /* battery: state of charge 0..1, drained per ms; recharges from 5 % to 100 % so that a
     * months-long run keeps cycling */
    double soc, drain_per_ms;
    int charging;
    uint32_t battery_last_ms;
    /* audio */
    uint32_t utter_start_ms, utter_end_ms;
    double f1, f2;
    const int16_t *replay; /* frames x ES_MEL_BANDS Q8.8, or NULL */
    size_t replay_frames, replay_pos;
} es_sensors;

/* Times are the HAL's wrapping ms clock; every comparison is wrap-safe. */
void es_sensors_init(es_sensors *s, uint32_t seed, uint32_t now_ms);
uint32_t es_rand(es_sensors *s);
double es_uniform(es_sensors *s, double lo, double hi);

/* ax, ay, az in mg; gx, gy, gz in 0.1 deg/s. */
void es_imu_sample(es_sensors *s, uint32_t t_ms, int16_t out[6]);
/* Returns an es_button_event due at t_ms, or 0. */
int es_button_poll(es_sensors *s, uint32_t t_ms);
void es_battery_read(es_sensors *s, uint32_t t_ms, uint16_t *millivolts, uint16_t *soc_permille,
                     uint8_t *charging, int16_t *temp_decicelsius);
/* One 20 ms log-mel frame, Q8.8 natural-log energies. */
void es_audio_frame(es_sensors *s, uint32_t t_ms, int16_t out[ES_MEL_BANDS]);

#endif
