/* libFuzzer harness: arbitrary bytes into the stream decoder. Checks, beyond "no crash, no UB"
 * (ASan + UBSan), that every frame it accepts is well formed and re-encodes to bytes that decode
 * to the same frame, and that the counters account for every frame exactly once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static es_decoder d, d2;
    static uint8_t wire[ES_MAX_WIRE];
    es_frame fr, fr2;
    es_decoder_init(&d);
    uint32_t frames = 0, rejected = 0;
    for (size_t i = 0; i < size; i++) {
        int r = es_decoder_push(&d, data[i], &fr);
        if (r == ES_PUSH_REJECTED) {
            rejected++;
            if (es_payload_check(fr.type, fr.payload, fr.len) == 0)
                abort();
        } else if (r == ES_PUSH_FRAME) {
            frames++;
            if (fr.len > ES_MAX_PAYLOAD || es_payload_check(fr.type, fr.payload, fr.len) != 0)
                abort();
            size_t n = es_frame_encode(fr.type, fr.seq, fr.payload, fr.len, wire);
            if (n == 0 || n > ES_MAX_WIRE || memchr(wire, 0, n - 1) || wire[n - 1] != 0)
                abort();
            es_decoder_init(&d2);
            int got = 0;
            for (size_t k = 0; k < n; k++)
                got += es_decoder_push(&d2, wire[k], &fr2) == ES_PUSH_FRAME;
            if (got != 1 || fr2.type != fr.type || fr2.seq != fr.seq || fr2.len != fr.len ||
                memcmp(fr2.payload, fr.payload, fr.len) != 0)
                abort();
        }
    }
    const es_counters *c = &d.counters;
    if (c->frames_ok != frames || c->unknown_types + c->payload_errors != rejected)
        abort();
    if (c->bytes_discarded > size)
        abort();
    return 0;
}
