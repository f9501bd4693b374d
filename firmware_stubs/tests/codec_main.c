/* The C side of the differential fuzz test (tests/test_firmware_differential.py): a line
 * protocol over stdin/stdout around es_frame_encode and one persistent es_decoder.
 *
 *   E <type hex> <seq dec> <payload hex|->  ->  W <wire hex|->   (- : payload over 512 bytes)
 *   D <bytes hex|->                          ->  F <type> <seq> <payload hex|->  (a good frame)
 *                                                R <type> <seq>                  (rejected frame)
 *                                                C <the 10 counters>             (after every D)
 *   N                                        ->  (a fresh decoder)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es_proto.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (s[0] == '-')
        return 0;
    while (n < cap && hexval(s[0]) >= 0 && hexval(s[1]) >= 0) {
        out[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
    }
    return n;
}

static void puthex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (n == 0)
        putchar('-');
    for (size_t i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
}

int main(void)
{
    static char line[1 << 17];
    static uint8_t buf[1 << 16], wire[ES_MAX_WIRE];
    static es_decoder d;
    es_decoder_init(&d);
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'N') {
            es_decoder_init(&d);
        } else if (line[0] == 'E') {
            unsigned type, seq;
            char *p = line + 2;
            type = (unsigned)strtoul(p, &p, 16);
            seq = (unsigned)strtoul(p, &p, 10);
            while (*p == ' ')
                p++;
            size_t n = unhex(p, buf, sizeof buf);
            size_t w = es_frame_encode((uint8_t)type, (uint16_t)seq, buf, n, wire);
            fputs("W ", stdout);
            if (w == 0)
                putchar('-');
            else
                puthex(wire, w);
            putchar('\n');
        } else if (line[0] == 'D') {
            size_t n = unhex(line + 2, buf, sizeof buf);
            es_frame fr;
            for (size_t i = 0; i < n; i++) {
                int r = es_decoder_push(&d, buf[i], &fr);
                if (r == ES_PUSH_FRAME) {
                    printf("F %u %u ", fr.type, fr.seq);
                    puthex(fr.payload, fr.len);
                    putchar('\n');
                } else if (r == ES_PUSH_REJECTED) {
                    printf("R %u %u\n", fr.type, fr.seq);
                }
            }
            const es_counters *c = &d.counters;
            printf("C %u %u %u %u %u %u %u %u %u %u\n", (unsigned)c->frames_ok,
                   (unsigned)c->crc_errors, (unsigned)c->cobs_errors, (unsigned)c->length_errors,
                   (unsigned)c->version_errors, (unsigned)c->unknown_types,
                   (unsigned)c->payload_errors, (unsigned)c->seq_gaps, (unsigned)c->seq_resets,
                   (unsigned)c->bytes_discarded);
        }
    }
    return 0;
}
