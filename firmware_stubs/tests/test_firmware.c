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

static void test_vectors(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[4096], name[64], payload_hex[2048], wire_hex[2048];
    unsigned type, seq;
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%63s %x %u %2047s %2047s", name, &type, &seq, payload_hex, wire_hex) != 5) {
            CHECK(!"malformed vector line");
            continue;
        }
        uint8_t payload[1024], wire[1200], out[ES_MAX_WIRE];
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
            got += es_decoder_push(&d, wire[i], &fr);
        CHECK(got == 1 && fr.type == type && fr.seq == seq && fr.len == plen &&
              memcmp(fr.payload, payload, plen) == 0);
        count++;
    }
    fclose(f);
    CHECK(count >= 10);
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
        got += es_decoder_push(&d, garbage[i], &fr);
    for (size_t i = 0; i < n; i++)
        got += es_decoder_push(&d, wire[i], &fr);
    CHECK(got == 1 && fr.seq == 3 && d.counters.bytes_discarded == 4);

    wire[2] ^= 0x01; /* corrupt a payload byte: CRC must catch it */
    got = 0;
    for (size_t i = 0; i < n; i++)
        got += es_decoder_push(&d, wire[i], &fr);
    CHECK(got == 0 && d.counters.crc_errors == 1);

    for (int i = 0; i < 2000; i++) /* an over-long run without a delimiter */
        es_decoder_push(&d, 0x41, &fr);
    es_decoder_push(&d, 0x00, &fr);
    CHECK(d.counters.length_errors == 1);
    wire[2] ^= 0x01;
    got = 0;
    for (size_t i = 0; i < n; i++)
        got += es_decoder_push(&d, wire[i], &fr);
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
        if (es_decoder_push(&d, fake_tx[i], &fr)) {
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
    CHECK(es_get_u32(s.last_payload[ES_HELLO]) == 0xABCD0001u);
    CHECK(s.count[ES_LOG] == 1);

    run_until(&fw, 2000); /* 2 s at the defaults */
    summarise(&s);
    CHECK(s.count[ES_IMU_BATCH] == 10);      /* 50 Hz, 10 per batch */
    CHECK(s.count[ES_AUDIO_FEATURES] == 20); /* 50 frames/s, 5 per message */
    CHECK(s.count[ES_BATTERY] >= 2 && s.count[ES_BATTERY] <= 3);
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
    size_t before = fake_tx_len;
    run_until(&fw, 3000);
    summarise(&s);
    CHECK(s.count[ES_ACK] == 2 && s.count[ES_NACK] == 2);
    CHECK(fw.commands_ok == 2 && fw.commands_rejected == 2);
    CHECK(fw.imu_rate_hz == 100);
    CHECK(es_get_u16(s.last_payload[ES_IMU_BATCH] + 4) == 100);
    (void)before;

    uint8_t all[2] = {0x1F, 0};
    send_cmd(ES_STOP_STREAM, 104, all, 2);
    run_until(&fw, 3100); /* let the command through */
    fake_tx_len = 0;
    run_until(&fw, 5000);
    summarise(&s);
    CHECK(s.total == 0); /* nothing streams once stopped */
}

int main(int argc, char **argv)
{
    test_crc();
    test_cobs();
    test_vectors(argc > 1 ? argv[1] : "protocol/vectors.txt");
    test_decoder_recovers();
    test_firmware();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
