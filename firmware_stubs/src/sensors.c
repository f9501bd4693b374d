/* Sensor signal generators; see es_sensors.h. */
#include "es_sensors.h"

#include <math.h>

/* now has reached due on the wrapping u32 ms clock */
#define DUE(now, due) ((uint32_t)((uint32_t)(now) - (uint32_t)(due)) < 0x80000000u)

#define PI 3.14159265358979323846

uint32_t es_rand(es_sensors *s)
{ /* xorshift32 */
    uint32_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return s->rng = x;
}

double es_uniform(es_sensors *s, double lo, double hi)
{
    return lo + (hi - lo) * (es_rand(s) / 4294967296.0);
}

static double noise(es_sensors *s, double amplitude)
{ /* sum of 4 uniforms: close enough to a normal for sensor noise */
    double acc = 0;
    for (int i = 0; i < 4; i++)
        acc += es_uniform(s, -1.0, 1.0);
    return acc * 0.5 * amplitude;
}

static int16_t clamp16(double v)
{
    if (v > 32767.0)
        return 32767;
    if (v < -32768.0)
        return -32768;
    return (int16_t)lround(v);
}

void es_sensors_init(es_sensors *s, uint32_t seed, uint32_t now_ms)
{
    s->rng = seed ? seed : 0x9E3779B9u;
    for (int i = 0; i < 8; i++)
        es_rand(s);
    s->gesture = ES_GESTURE_NONE;
    s->next_gesture_ms = now_ms + (uint32_t)es_uniform(s, 1000, 3000);
    s->button_down = 0;
    s->long_sent = 0;
    s->next_press_ms = now_ms + (uint32_t)es_uniform(s, 1500, 4000);
    s->soc = 0.9;
    s->drain_per_ms = 0.01 / 60000.0; /* 1 % per minute: a fast-forwarded demo battery */
    s->charging = 0;
    s->battery_last_ms = now_ms;
    s->utter_start_ms = now_ms + (uint32_t)es_uniform(s, 300, 1200);
    s->utter_end_ms = s->utter_start_ms + (uint32_t)es_uniform(s, 350, 800);
    s->f1 = 8;
    s->f2 = 22;
    s->replay = NULL;
    s->replay_frames = s->replay_pos = 0;
}

void es_imu_sample(es_sensors *s, uint32_t t_ms, int16_t out[6])
{
    if (s->gesture == ES_GESTURE_NONE && DUE(t_ms, s->next_gesture_ms)) {
        s->gesture = (es_rand(s) & 1u) ? ES_GESTURE_NOD : ES_GESTURE_SHAKE;
        s->gesture_start_ms = t_ms;
    }
    double pitch_rate = 0, yaw_rate = 0, pitch = 0; /* deg/s, deg/s, deg */
    if (s->gesture != ES_GESTURE_NONE) {
        double t = (t_ms - s->gesture_start_ms) / 1000.0;
        if (t > 1.2) {
            s->gesture = ES_GESTURE_NONE;
            s->next_gesture_ms = t_ms + (uint32_t)es_uniform(s, 3000, 7000);
        } else if (s->gesture == ES_GESTURE_NOD) { /* 2.5 Hz pitch oscillation, +-15 deg */
            pitch = 15.0 * sin(2 * PI * 2.5 * t);
            pitch_rate = 15.0 * 2 * PI * 2.5 * cos(2 * PI * 2.5 * t);
        } else { /* 3 Hz yaw oscillation, +-20 deg */
            yaw_rate = 20.0 * 2 * PI * 3.0 * cos(2 * PI * 3.0 * t);
        }
    }
    double rad = pitch * PI / 180.0;
    out[0] = clamp16(1000.0 * sin(rad) + noise(s, 6));
    out[1] = clamp16(noise(s, 6));
    out[2] = clamp16(1000.0 * cos(rad) + noise(s, 6));
    out[3] = clamp16(noise(s, 3));
    out[4] = clamp16(10.0 * pitch_rate + noise(s, 3));
    out[5] = clamp16(10.0 * yaw_rate + noise(s, 3));
}

int es_button_poll(es_sensors *s, uint32_t t_ms)
{
    if (!s->button_down && DUE(t_ms, s->next_press_ms)) {
        s->button_down = 1;
        s->long_sent = 0;
        s->button_down_ms = t_ms;
        /* one press in five is a long press */
        s->button_up_ms = t_ms + ((es_rand(s) % 5u == 0) ? 1300u : (uint32_t)es_uniform(s, 80, 220));
        return ES_BUTTON_PRESS;
    }
    if (s->button_down && !s->long_sent && t_ms - s->button_down_ms >= 1000u &&
        !DUE(t_ms, s->button_up_ms)) {
        s->long_sent = 1;
        return ES_BUTTON_LONG_PRESS;
    }
    if (s->button_down && DUE(t_ms, s->button_up_ms)) {
        s->button_down = 0;
        s->next_press_ms = t_ms + (uint32_t)es_uniform(s, 4000, 9000);
        return ES_BUTTON_RELEASE;
    }
    return 0;
}

void es_battery_read(es_sensors *s, uint32_t t_ms, uint16_t *millivolts, uint16_t *soc_permille,
                     uint8_t *charging, int16_t *temp_decicelsius)
{
    uint32_t elapsed = t_ms - s->battery_last_ms; /* wrap-safe */
    s->battery_last_ms = t_ms;
    if (s->charging) { /* 2 % per minute up to full */
        s->soc += 2.0 * s->drain_per_ms * elapsed;
        if (s->soc >= 1.0) {
            s->soc = 1.0;
            s->charging = 0;
        }
    } else {
        s->soc -= s->drain_per_ms * elapsed;
        if (s->soc <= 0.05)
            s->charging = 1;
    }
    double soc = s->soc < 0 ? 0 : s->soc;
    /* Single-cell Li-ion open-circuit voltage, roughly 3.30 V empty to 4.20 V full. */
    double mv = 3300.0 + 900.0 * pow(soc, 0.8) + noise(s, 4);
    *millivolts = (uint16_t)lround(mv);
    *soc_permille = (uint16_t)lround(soc * 1000.0);
    *charging = (uint8_t)s->charging;
    *temp_decicelsius = clamp16(10.0 * (31.0 + noise(s, 0.3)));
}

void es_audio_frame(es_sensors *s, uint32_t t_ms, int16_t out[ES_MEL_BANDS])
{
    if (s->replay && s->replay_frames) {
        const int16_t *f = s->replay + (s->replay_pos % s->replay_frames) * ES_MEL_BANDS;
        for (int b = 0; b < ES_MEL_BANDS; b++)
            out[b] = f[b];
        s->replay_pos++;
        return;
    }
    if (DUE(t_ms, s->utter_end_ms)) { /* schedule the next utterance */
        s->utter_start_ms = t_ms + (uint32_t)es_uniform(s, 800, 2500);
        s->utter_end_ms = s->utter_start_ms + (uint32_t)es_uniform(s, 350, 800);
        s->f1 = es_uniform(s, 5, 11);
        s->f2 = es_uniform(s, 18, 28);
    }
    int speaking = DUE(t_ms, s->utter_start_ms) && !DUE(t_ms, s->utter_end_ms);
    if (speaking) { /* formants drift during the utterance */
        s->f1 += es_uniform(s, -0.3, 0.3);
        s->f2 += es_uniform(s, -0.5, 0.5);
    }
    for (int b = 0; b < ES_MEL_BANDS; b++) {
        double e = -9.0 + noise(s, 0.8); /* quiet room noise, natural-log band energy */
        if (speaking) {
            double d1 = b - s->f1, d2 = b - s->f2;
            e += 12.0 * exp(-d1 * d1 / 8.0) + 9.0 * exp(-d2 * d2 / 14.0) + 4.0;
        }
        out[b] = clamp16(e * 256.0);
    }
}
