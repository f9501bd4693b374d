/* Host unit tests of the firmware core: CRC, COBS, the shared test vectors, the stream decoder,
 * and the firmware's command handling and stream schedule. Ends with "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es_firmware.h"
#include "es_proto.h"
#include "fake_hal.h"

static int passed, failed;
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            passed++;                                                                  \
        } else {                                                                       \
            failed++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
        }                                                                              \
    } while (0)

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    if (!strcmp(s, "-"))
        return 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void test_crc(void)
{
    CHECK(es_crc16((const uint8_t *)"123456789", 9) == 0x29B1);
    CHECK(es_crc16(NULL, 0) == 0xFFFF);
}

static void test_cobs(void)
{
    uint8_t in[600], enc[700], dec[700];
    uint8_t zero = 0;
    CHECK(es_cobs_encode(&zero, 1, enc) == 2 && enc[0] == 1 && enc[1] == 1);
    CHECK(es_cobs_encode(in, 0, enc) == 1 && enc[0] == 1);
    unsigned seed = 7;
    for (int trial = 0; trial < 200; trial++) {
        size_t len = (size_t)(trial * 3 % 600);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (trial % 3 == 0) ? (uint8_t)(1 + (seed >> 16) % 255) : (uint8_t)((seed >> 16) % 4);
        }
        size_t n = es_cobs_encode(in, len, enc);
        CHECK(memchr(enc, 0, n) == NULL);
        CHECK(n <= len + len / 254 + 1);
        long m = es_cobs_decode(enc, n, dec, sizeof dec);
        CHECK(m == (long)len && memcmp(in, dec, len) == 0);
    }
    uint8_t bad[] = {0x05, 0x11, 0x22}; /* code says 4 data bytes, only 2 follow */
    CHECK(es_cobs_decode(bad, sizeof bad, dec, sizeof dec) == -1);
}

static const char *COUNTER_NAMES[] = {"frames_ok",      "crc_errors",     "cobs_errors",
                                       "length_errors",  "version_errors", "unknown_types",
                                       "payload_errors", "seq_gaps",       "seq_resets",
                                       "bytes_discarded"};

static uint32_t counter_at(const es_counters *c, int i)
{
    const uint32_t v[] = {c->frames_ok,      c->crc_errors,    c->cobs_errors, c->length_errors,
                          c->version_errors, c->unknown_types, c->payload_errors,
                          c->seq_gaps,       c->seq_resets,    c->bytes_discarded};
    return v[i];
}

/* "!name wirehex counters": feed the stream to a fresh decoder; every counter must match. */
static int stream_vector(char *line)
{
    static char name[64], wire_hex[8192], counters[1024];
    static uint8_t wire[4096];
    if (sscanf(line, "!%63s %8191s %1023s", name, wire_hex, counters) != 3)
        return 0;
    size_t wlen = unhex(wire_hex, wire);
    es_decoder d;
    es_frame fr;
    es_decoder_init(&d);
    for (size_t i = 0; i < wlen; i++)
        es_decoder_push(&d, wire[i], &fr);
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        char key[48];
        snprintf(key, sizeof key, "%s=", COUNTER_NAMES[i]);
        const char *at = strstr(counters, key);
        unsigned long want = at ? strtoul(at + strlen(key), NULL, 10) : 0;
        if (counter_at(&d.counters, i) != want) {
            fprintf(stderr, "stream vector %s: %s is %u, expected %lu\n", name, COUNTER_NAMES[i],
                    (unsigned)counter_at(&d.counters, i), want);
            ok = 0;
        }
    }
    CHECK(ok);
    return 1;
}

static void test_vectors(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    static char line[16384], name[64], payload_hex[4096], wire_hex[4096];
    unsigned type, seq;
    int count = 0, streams = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (line[0] == '!') {
            streams += stream_vector(line);
            continue;
        }
        if (sscanf(line, "%63s %x %u %4095s %4095s", name, &type, &seq, payload_hex, wire_hex) != 5) {
            CHECK(!"malformed vector line");
            continue;
        }
        static uint8_t payload[2048], wire[2400], out[ES_MAX_WIRE];
        size_t plen = unhex(payload_hex, payload), wlen = unhex(wire_hex, wire);
        size_t n = es_frame_encode((uint8_t)type, (uint16_t)seq, payload, plen, out);
        int enc_ok = n == wlen && memcmp(out, wire, n) == 0;
        if (!enc_ok)
            fprintf(stderr, "vector %s: encoding differs\n", name);
        CHECK(enc_ok);
        es_decoder d;
        es_frame fr;
        int got = 0;
        es_decoder_init(&d);
        for (size_t i = 0; i < wlen; i++)
            got += es_decoder_push(&d, wire[i], &fr) != ES_PUSH_NONE;
        CHECK(got == 1 && fr.type == type && fr.seq == seq && fr.len == plen &&
              memcmp(fr.payload, payload, plen) == 0);
        count++;
    }
    fclose(f);
    CHECK(count >= 16);
    CHECK(streams >= 10);
}

static void test_decoder_recovers(void)
{
    es_decoder d;
    es_frame fr;
    uint8_t wire[ES_MAX_WIRE], p[4] = {1, 2, 3, 4};
    size_t n = es_frame_encode(ES_PING, 3, p, 4, wire);
    es_decoder_init(&d);
    const uint8_t garbage[] = {0x13, 0x37, 0xFF, 0x00};
    int got = 0;
    for (size_t i = 0; i < sizeof garbage; i++)
        got += es_decoder_push(&d, garbage[i], &fr) != ES_PUSH_NONE;
    for (size_t i = 0; i < n; i++)
        got += es_decoder_push(&d, wire[i], &fr) != ES_PUSH_NONE;
    CHECK(got == 1 && fr.seq == 3 && d.counters.bytes_discarded == 4);

    wire[2] ^= 0x01; /* corrupt a payload byte: CRC must catch it */
    got = 0;
    for (size_t i = 0; i < n; i++)
        got += es_decoder_push(&d, wire[i], &fr) != ES_PUSH_NONE;
    CHECK(got == 0 && d.counters.crc_errors == 1);

    for (int i = 0; i < 2000; i++) /* an over-long run without a delimiter */
        es_decoder_push(&d, 0x41, &fr);
    es_decoder_push(&d, 0x00, &fr);
    CHECK(d.counters.length_errors == 1);
    wire[2] ^= 0x01;
    got = 0;
    for (size_t i = 0; i < n; i++)
        got += es_decoder_push(&d, wire[i], &fr) != ES_PUSH_NONE;
    CHECK(got == 1); /* and it resynchronised */
}

/* Decode everything the firmware has written so far. */
typedef struct {
    int count[256];
    es_frame last[256];
    uint8_t last_payload[256][ES_MAX_PAYLOAD];
    uint8_t first_type;
    uint16_t first_seq;
    int total;
} tx_summary;

static void summarise(tx_summary *s)
{
    es_decoder d;
    es_frame fr;
    memset(s, 0, sizeof *s);
    es_decoder_init(&d);
    for (size_t i = 0; i < fake_tx_len; i++) {
        if (es_decoder_push(&d, fake_tx[i], &fr) == ES_PUSH_FRAME) {
            if (s->total++ == 0) {
                s->first_type = fr.type;
                s->first_seq = fr.seq;
            }
            s->count[fr.type]++;
            s->last[fr.type] = fr;
            memcpy(s->last_payload[fr.type], fr.payload, fr.len);
        }
    }
}

static void send_cmd(uint8_t type, uint16_t seq, const uint8_t *p, size_t len)
{
    uint8_t wire[ES_MAX_WIRE];
    size_t n = es_frame_encode(type, seq, p, len, wire);
    fake_rx_push(wire, n);
}

static void run_until(es_fw *fw, uint32_t end_ms)
{
    while (fake_now_ms < end_ms) {
        fake_now_ms += 1;
        es_fw_poll(fw, fake_now_ms);
    }
}

static void test_firmware(void)
{
    static es_fw fw;
    static tx_summary s;
    fake_reset();
    es_fw_start(&fw, 42, 0xABCD0001u, 0);
    summarise(&s);
    CHECK(s.first_type == ES_HELLO && s.first_seq == 0);
    CHECK(s.last[ES_HELLO].len == ES_HELLO_SIZE);
    CHECK(es_get_u32(s.last_payload[ES_HELLO]) == 0xABCD0001u);
    CHECK(s.last_payload[ES_HELLO][24] == ES_HELLO_BOOT);
    CHECK(s.count[ES_LOG] == 1);

    run_until(&fw, 2000); /* 2 s at the defaults */
    summarise(&s);
    CHECK(s.count[ES_IMU_BATCH] == 10);      /* 50 Hz, 10 per batch */
    CHECK(s.count[ES_AUDIO_FEATURES] == 20); /* 50 frames/s, 5 per message */
    CHECK(s.count[ES_BATTERY] >= 2 && s.count[ES_BATTERY] <= 3);
    CHECK(s.count[ES_STATUS] == 2);
    CHECK(s.last[ES_AUDIO_FEATURES].len == 6 + 5 * 40 * 2);
    uint16_t mv = es_get_u16(s.last_payload[ES_BATTERY] + 4);
    CHECK(mv > 3300 && mv < 4250);

    uint8_t ping[4] = {1, 2, 3, 4};
    send_cmd(ES_PING, 100, ping, 4);
    uint8_t bogus[1] = {0};
    send_cmd(0x7E, 101, bogus, 1);
    uint8_t rate[3] = {ES_STREAM_IMU, 100, 0}; /* IMU 100 Hz */
    send_cmd(ES_SET_RATE, 102, rate, 3);
    uint8_t bad_rate[3] = {ES_STREAM_AUDIO, 25, 0}; /* audio is fixed at 50 frames/s */
    send_cmd(ES_SET_RATE, 103, bad_rate, 3);
    send_cmd(ES_PING, 104, ping, 3); /* wrong payload size */
    run_until(&fw, 3000);
    summarise(&s);
    CHECK(s.count[ES_ACK] == 2 && s.count[ES_NACK] == 3);
    CHECK(fw.commands_ok == 2 && fw.commands_rejected == 3);
    CHECK(fw.rx.counters.unknown_types == 1 && fw.rx.counters.payload_errors == 1);
    CHECK(fw.rx.counters.frames_ok == 3 && fw.rx.counters.seq_gaps == 0);
    CHECK(s.last_payload[ES_NACK][3] == ES_NACK_BAD_PAYLOAD);
    CHECK(fw.imu_rate_hz == 100);
    CHECK(es_get_u16(s.last_payload[ES_IMU_BATCH] + 4) == 100);

    send_cmd(ES_PING, 110, ping, 4); /* host seq jumped 104 -> 110: a gap on the MCU side */
    send_cmd(ES_PING, 0, ping, 4);   /* the host restarted its count: a reset, not a gap */
    run_until(&fw, 3010);
    CHECK(fw.rx.counters.seq_gaps == 1 && fw.rx.counters.seq_resets == 1);

    uint8_t all[2] = {ES_ALL_STREAMS, 0};
    send_cmd(ES_STOP_STREAM, 1, all, 2);
    run_until(&fw, 3100); /* let the command through */
    fake_tx_len = 0;
    run_until(&fw, 12000);
    summarise(&s);
    CHECK(s.total == 0); /* nothing streams once stopped, not even STATUS or HELLO */

    send_cmd(ES_GET_INFO, 2, NULL, 0); /* ... but GET_INFO still answers with HELLO */
    run_until(&fw, 12010);
    summarise(&s);
    CHECK(s.count[ES_ACK] == 1 && s.count[ES_HELLO] == 1);
    CHECK(s.last_payload[ES_HELLO][24] == ES_HELLO_REQUESTED);
    CHECK(es_get_u16(s.last_payload[ES_HELLO] + 14) == 0); /* streams now enabled: none */
    uint32_t up_lo = es_get_u32(s.last_payload[ES_HELLO] + 16);
    CHECK(up_lo == 12001 && es_get_u32(s.last_payload[ES_HELLO] + 20) == 0);
}

/* ---- long runs through a sink that decodes frames as they are queued -------------------- */

typedef struct {
    es_decoder d;
    uint32_t frames[256];
    uint32_t imu_samples, audio_frames;
    uint32_t imu_last_t0, audio_last_t0, imu_step_bad, audio_step_bad, imu_rate_bad;
    int imu_seen, audio_seen;
    uint32_t imu_expect_step_ms; /* 0 = do not check */
    uint16_t imu_expect_rate;
    uint32_t last_imu_arrival, max_imu_silence_ms; /* in fake ms */
    uint32_t status_dropped, status_lag_max_ms, status_offered_max, status_line;
    uint64_t last_uptime;
    int uptime_backwards;
} sink_stats;

static sink_stats g_sink;

static void sink(const uint8_t *buf, size_t len)
{
    sink_stats *k = &g_sink;
    es_frame fr;
    for (size_t i = 0; i < len; i++) {
        if (es_decoder_push(&k->d, buf[i], &fr) != ES_PUSH_FRAME)
            continue;
        k->frames[fr.type]++;
        const uint8_t *p = fr.payload;
        if (fr.type == ES_IMU_BATCH) {
            uint32_t t0 = es_get_u32(p);
            uint16_t rate = es_get_u16(p + 4);
            if (k->imu_seen && k->imu_expect_step_ms) {
                uint32_t step = t0 - k->imu_last_t0; /* wrap-safe */
                if (step + 1u < k->imu_expect_step_ms || step > k->imu_expect_step_ms + 1u)
                    k->imu_step_bad++;
            }
            if (k->imu_expect_rate && rate != k->imu_expect_rate)
                k->imu_rate_bad++;
            if (k->imu_seen && fake_now_ms - k->last_imu_arrival > k->max_imu_silence_ms)
                k->max_imu_silence_ms = fake_now_ms - k->last_imu_arrival;
            k->last_imu_arrival = fake_now_ms;
            k->imu_seen = 1;
            k->imu_last_t0 = t0;
            k->imu_samples += p[6];
        } else if (fr.type == ES_AUDIO_FEATURES) {
            uint32_t t0 = es_get_u32(p);
            if (k->audio_seen && t0 - k->audio_last_t0 != 100u)
                k->audio_step_bad++;
            k->audio_seen = 1;
            k->audio_last_t0 = t0;
            k->audio_frames += p[4];
        } else if (fr.type == ES_STATUS || fr.type == ES_HELLO) {
            uint64_t up = es_get_u32(p + (fr.type == ES_STATUS ? 0 : 16)) |
                          (uint64_t)es_get_u32(p + (fr.type == ES_STATUS ? 4 : 20)) << 32;
            if (up < k->last_uptime)
                k->uptime_backwards = 1;
            k->last_uptime = up;
            if (fr.type == ES_STATUS) {
                uint16_t lag = es_get_u16(p + 12);
                uint32_t offered = es_get_u32(p + 18);
                k->status_line = es_get_u32(p + 14);
                k->status_dropped = es_get_u32(p + 22);
                if (lag > k->status_lag_max_ms)
                    k->status_lag_max_ms = lag;
                if (offered > k->status_offered_max)
                    k->status_offered_max = offered;
            }
        }
    }
}

static void sink_reset(uint32_t imu_step_ms, uint16_t imu_rate)
{
    memset(&g_sink, 0, sizeof g_sink);
    es_decoder_init(&g_sink.d);
    g_sink.imu_expect_step_ms = imu_step_ms;
    g_sink.imu_expect_rate = imu_rate;
    fake_tx_sink = sink;
}

/* Advance the fake clock by `ms` in steps of `step_ms`, polling the firmware each step. */
static void run_for(es_fw *fw, uint32_t ms, uint32_t step_ms)
{
    for (uint32_t done = 0; done < ms; done += step_ms) {
        fake_now_ms += step_ms; /* wraps like the real counter */
        fake_line_drain(step_ms);
        es_fw_poll(fw, fake_now_ms);
    }
}

/* Start the clock 5 s before a wrap point and check 20 s of streams across it. */
static void test_wrap(uint32_t start_ms, const char *what)
{
    static es_fw fw;
    fake_reset();
    fake_now_ms = start_ms;
    sink_reset(200, 50); /* 50 Hz in batches of 10: one batch per 200 ms */
    es_fw_start(&fw, 7, 1, fake_now_ms);
    run_for(&fw, 20000, 1);
    sink_stats *k = &g_sink;
    int ok = k->imu_samples >= 995 && k->imu_samples <= 1001 && k->audio_frames >= 995 &&
             k->audio_frames <= 1001 && k->frames[ES_BATTERY] >= 20 && k->frames[ES_BATTERY] <= 21 &&
             k->imu_step_bad == 0 && k->audio_step_bad == 0 && k->imu_rate_bad == 0 &&
             k->frames[ES_STATUS] == 20 && k->frames[ES_HELLO] == 5 && !k->uptime_backwards &&
             k->d.counters.seq_gaps == 0 && fw.sched_resyncs == 0 && fw.uptime_ms == 20000;
    if (!ok)
        fprintf(stderr,
                "wrap %s: imu %u audio %u battery %u status %u hello %u steps %u/%u resyncs %u\n",
                what, (unsigned)k->imu_samples, (unsigned)k->audio_frames,
                (unsigned)k->frames[ES_BATTERY], (unsigned)k->frames[ES_STATUS],
                (unsigned)k->frames[ES_HELLO], (unsigned)k->imu_step_bad,
                (unsigned)k->audio_step_bad, (unsigned)fw.sched_resyncs);
    CHECK(ok);

    /* A rate that is not a whole number of ms (3 Hz: 333.333 ms) across the same wrap. */
    fake_reset();
    fake_now_ms = start_ms;
    sink_reset(0, 3);
    es_fw_start(&fw, 7, 1, fake_now_ms);
    uint8_t rate[3] = {ES_STREAM_IMU, 3, 0};
    send_cmd(ES_SET_RATE, 1, rate, 3);
    run_for(&fw, 30000, 1);
    /* 30 s at 3 Hz = 90 samples = 9 batches, each 10 samples = 3333 or 3334 ms apart */
    CHECK(g_sink.imu_samples >= 89 && g_sink.imu_samples <= 91 && g_sink.imu_rate_bad == 0);
}

/* Two hours of fake time (past the 71.6-min point where a u32 us count wraps), polled every
 * 2 ms: every minute carries the right number of samples and no stream ever stalls. */
static void test_two_hours(void)
{
    static es_fw fw;
    fake_reset();
    sink_reset(200, 50);
    es_fw_start(&fw, 11, 1, 0);
    int bad_minutes = 0;
    for (int minute = 0; minute < 120; minute++) {
        uint32_t imu0 = g_sink.imu_samples, audio0 = g_sink.audio_frames;
        uint32_t batt0 = g_sink.frames[ES_BATTERY];
        run_for(&fw, 60000, 2);
        uint32_t imu = g_sink.imu_samples - imu0, audio = g_sink.audio_frames - audio0;
        uint32_t batt = g_sink.frames[ES_BATTERY] - batt0;
        if (imu < 2990 || imu > 3010 || audio < 2995 || audio > 3005 || batt < 59 || batt > 61) {
            if (bad_minutes++ < 3)
                fprintf(stderr, "minute %d: imu %u audio %u battery %u\n", minute,
                        (unsigned)imu, (unsigned)audio, (unsigned)batt);
        }
    }
    CHECK(bad_minutes == 0);
    CHECK(g_sink.max_imu_silence_ms <= 202); /* one batch per 200 ms, polled every 2 ms */
    CHECK(g_sink.imu_step_bad == 0 && g_sink.audio_step_bad == 0);
    CHECK(g_sink.d.counters.seq_gaps == 0 && g_sink.d.counters.crc_errors == 0);
    CHECK(fw.uptime_ms == 7200000u && !g_sink.uptime_backwards);
    CHECK(g_sink.frames[ES_HELLO] >= 1440 && g_sink.frames[ES_STATUS] >= 7199);
}

/* The first IMU batch after SET_RATE carries the new rate; samples taken at the old rate leave
 * in their own batch stamped with the old rate. */
static void test_set_rate_batches(void)
{
    static es_fw fw;
    static tx_summary s;
    fake_reset();
    es_fw_start(&fw, 3, 1, 0);
    run_until(&fw, 1070); /* mid-batch: some 50 Hz samples pending */
    fake_tx_len = 0;
    uint8_t rate[3] = {ES_STREAM_IMU, 200, 0};
    send_cmd(ES_SET_RATE, 1, rate, 3);
    run_until(&fw, 1071);
    es_decoder d;
    es_frame fr;
    es_decoder_init(&d);
    int batches = 0, ok = 1;
    for (size_t i = 0; i < fake_tx_len; i++)
        if (es_decoder_push(&d, fake_tx[i], &fr) == ES_PUSH_FRAME && fr.type == ES_IMU_BATCH) {
            batches++;
            ok &= es_get_u16(fr.payload + 4) == 50 && fr.payload[6] > 0 && fr.payload[6] < 10;
        }
    CHECK(batches == 1 && ok); /* the partial old-rate batch */
    fake_tx_len = 0;
    run_until(&fw, 1300);
    summarise(&s);
    CHECK(s.count[ES_IMU_BATCH] >= 4);
    es_decoder_init(&d);
    uint32_t prev_t0 = 0;
    int n = 0, good = 1;
    for (size_t i = 0; i < fake_tx_len; i++)
        if (es_decoder_push(&d, fake_tx[i], &fr) == ES_PUSH_FRAME && fr.type == ES_IMU_BATCH) {
            uint32_t t0 = es_get_u32(fr.payload);
            good &= es_get_u16(fr.payload + 4) == 200 && fr.payload[6] == 10;
            if (n++ == 0)
                good &= t0 == 1071; /* the schedule restarted when the command arrived */
            else
                good &= t0 - prev_t0 == 50; /* 10 samples at 200 Hz */
            if (!good)
                fprintf(stderr, "batch %d t0 %u rate %u count %u\n", n, (unsigned)t0,
                        es_get_u16(fr.payload + 4), fr.payload[6]);
            prev_t0 = t0;
        }
    CHECK(good);
    (void)s;
}

/* Over-subscribed link: 57 600 baud (5 760 B/s) with IMU at 400 Hz offered on top of audio.
 * Frames are dropped (never cut), counted, and reported in STATUS; lag stays bounded by the
 * TX ring; commands are still answered. */
static void test_back_pressure(void)
{
    static es_fw fw;
    fake_reset();
    fake_baud = 57600;
    fake_tx_capacity = 1024;
    sink_reset(0, 0);
    es_fw_start(&fw, 5, 1, 0);
    uint8_t rate[3] = {ES_STREAM_IMU, 0x90, 0x01}; /* 400 Hz */
    send_cmd(ES_SET_RATE, 1, rate, 3);
    run_for(&fw, 10000, 1);
    uint8_t ping[4] = {9, 9, 9, 9};
    send_cmd(ES_PING, 2, ping, 4);
    run_for(&fw, 1000, 1);
    sink_stats *k = &g_sink;
    CHECK(fw.tx_dropped_frames > 50);
    CHECK(k->status_dropped > 0 && k->status_dropped <= fw.tx_dropped_frames);
    CHECK(k->status_line == 5760);
    CHECK(k->status_offered_max > 5760);          /* the host can see it is over-subscribed */
    CHECK(k->status_lag_max_ms <= 1024 * 1000 / 5760 + 1); /* bounded by the ring */
    CHECK(k->frames[ES_ACK] == 2);                /* SET_RATE and PING both answered */
    CHECK(k->d.counters.crc_errors == 0 && k->d.counters.cobs_errors == 0); /* never cut */
    CHECK(k->d.counters.seq_gaps > 0); /* drops are visible to the host as gaps */
}

int main(int argc, char **argv)
{
    test_crc();
    test_cobs();
    test_vectors(argc > 1 ? argv[1] : "protocol/vectors.txt");
    test_decoder_recovers();
    test_firmware();
    test_set_rate_batches();
    test_wrap(4294967u - 5000u, "u32 us (71.6 min)");
    test_wrap(0xFFFFFFFFu - 5000u, "u32 ms (49.7 days)");
    test_two_hours();
    test_back_pressure();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
