/* Framing for the edgesplit sensor link: CRC-16/CCITT-FALSE, COBS, frame encode/decode. */
#include "es_proto.h"

#include <string.h>

uint16_t es_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

size_t es_cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t code_at = 0, w = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = w++;
            code = 1;
        } else {
            out[w++] = in[i];
            if (++code == 0xFF) {
                out[code_at] = code;
                code_at = w++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return w;
}

long es_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap)
{
    size_t r = 0, w = 0;
    while (r < len) {
        uint8_t code = in[r++];
        if (code == 0)
            return -1;
        for (uint8_t i = 1; i < code; i++) {
            if (r >= len || in[r] == 0 || w >= out_cap)
                return -1;
            out[w++] = in[r++];
        }
        if (code != 0xFF && r < len) {
            if (w >= out_cap)
                return -1;
            out[w++] = 0;
        }
    }
    return (long)w;
}

size_t es_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out)
{
    uint8_t packet[ES_MAX_PACKET];
    if (len > ES_MAX_PAYLOAD)
        return 0;
    packet[0] = ES_VERSION;
    packet[1] = type;
    es_put_u16(packet + 2, seq);
    es_put_u16(packet + 4, (uint16_t)len);
    if (len)
        memcpy(packet + ES_HEADER_SIZE, payload, len);
    es_put_u16(packet + ES_HEADER_SIZE + len, es_crc16(packet, ES_HEADER_SIZE + len));
    size_t n = es_cobs_encode(packet, ES_HEADER_SIZE + len + ES_CRC_SIZE, out);
    out[n++] = 0;
    return n;
}

void es_decoder_init(es_decoder *d) { memset(d, 0, sizeof *d); }

static int finish_frame(es_decoder *d, es_frame *out)
{
    long n = es_cobs_decode(d->buf, d->used, d->packet, sizeof d->packet);
    if (n < 0) {
        d->counters.cobs_errors++;
        return 0;
    }
    if ((size_t)n < ES_HEADER_SIZE + ES_CRC_SIZE) {
        d->counters.length_errors++;
        return 0;
    }
    size_t body = (size_t)n - ES_CRC_SIZE;
    if (es_get_u16(d->packet + body) != es_crc16(d->packet, body)) {
        d->counters.crc_errors++;
        return 0;
    }
    if (d->packet[0] != ES_VERSION) {
        d->counters.version_errors++;
        return 0;
    }
    uint16_t len = es_get_u16(d->packet + 4);
    if (len != body - ES_HEADER_SIZE || len > ES_MAX_PAYLOAD) {
        d->counters.length_errors++;
        return 0;
    }
    out->type = d->packet[1];
    out->seq = es_get_u16(d->packet + 2);
    out->len = len;
    out->payload = d->packet + ES_HEADER_SIZE;
    d->counters.frames_ok++;
    return 1;
}

int es_decoder_push(es_decoder *d, uint8_t byte, es_frame *out)
{
    if (byte != 0) {
        if (d->overflow) {
            d->counters.bytes_discarded++;
        } else if (d->used == sizeof d->buf) {
            /* Longer than any legal frame: drop everything up to the next delimiter. */
            d->counters.bytes_discarded += (uint32_t)d->used + 1u;
            d->used = 0;
            d->overflow = 1;
        } else {
            d->buf[d->used++] = byte;
        }
        return 0;
    }
    int ok = 0;
    if (d->overflow) {
        d->counters.length_errors++;
    } else if (d->used > 0) {
        ok = finish_frame(d, out);
        if (!ok)
            d->counters.bytes_discarded += (uint32_t)d->used + 1u;
    }
    d->used = 0;
    d->overflow = 0;
    return ok;
}
