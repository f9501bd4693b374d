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
    /* Canonical COBS (Cheshire & Baker 1999, as the Python `cobs` package): a block of 254
     * non-zero bytes (code 0xFF) opens a new block only if more input follows, so a packet that
     * ends in such a block gets no trailing 0x01. */
    size_t code_at = 0, w = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = w++;
            code = 1;
        } else {
            out[w++] = in[i];
            if (++code == 0xFF && i + 1 < len) {
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

int es_payload_check(uint8_t type, const uint8_t *p, size_t len)
{
    size_t want;
    switch (type) {
    case ES_HELLO: want = ES_HELLO_SIZE; break;
    case ES_BUTTON: want = 6; break;
    case ES_BATTERY: want = 11; break;
    case ES_STATUS: want = ES_STATUS_SIZE; break;
    case ES_PING: want = 4; break;
    case ES_START_STREAM:
    case ES_STOP_STREAM: want = 2; break;
    case ES_SET_RATE: want = 3; break;
    case ES_GET_INFO: want = 0; break;
    case ES_ACK: want = 3; break;
    case ES_NACK: want = 4; break;
    case ES_IMU_BATCH:
        if (len < 7)
            return ES_NACK_BAD_PAYLOAD;
        want = 7u + 12u * p[6];
        break;
    case ES_AUDIO_FEATURES:
        if (len < 6)
            return ES_NACK_BAD_PAYLOAD;
        want = 6u + 2u * (size_t)p[4] * p[5];
        break;
    case ES_LOG:
        return len >= 1 ? 0 : ES_NACK_BAD_PAYLOAD;
    default:
        return ES_NACK_UNKNOWN_TYPE;
    }
    return len == want ? 0 : ES_NACK_BAD_PAYLOAD;
}

void es_decoder_init(es_decoder *d) { memset(d, 0, sizeof *d); }

void es_decoder_resync(es_decoder *d)
{
    d->have_seq = 0;
    d->bad_since_good = 0;
}

/* Sequence bookkeeping for a frame whose CRC verified (PROTOCOL.md, "Sequence numbers"). */
static void track_seq(es_decoder *d, uint16_t seq)
{
    if (d->have_seq) {
        uint16_t delta = (uint16_t)(seq - (uint16_t)(d->last_seq + 1u));
        if (delta != 0) {
            if (seq == 0 || delta >= 0x8000u)
                d->counters.seq_resets++; /* the sender restarted its count: not a loss */
            else if (delta > d->bad_since_good)
                d->counters.seq_gaps++; /* frames missing that no counted error explains */
        }
    }
    d->have_seq = 1;
    d->last_seq = seq;
    d->bad_since_good = 0;
}

static int finish_frame(es_decoder *d, es_frame *out)
{
    long n = es_cobs_decode(d->buf, d->used, d->packet, sizeof d->packet);
    if (n < 0) {
        d->counters.cobs_errors++;
        return -1;
    }
    if ((size_t)n < ES_HEADER_SIZE + ES_CRC_SIZE) {
        d->counters.length_errors++;
        return -1;
    }
    size_t body = (size_t)n - ES_CRC_SIZE;
    if (es_get_u16(d->packet + body) != es_crc16(d->packet, body)) {
        d->counters.crc_errors++;
        return -1;
    }
    if (d->packet[0] != ES_VERSION) {
        d->counters.version_errors++;
        return -1;
    }
    uint16_t len = es_get_u16(d->packet + 4);
    if (len != body - ES_HEADER_SIZE || len > ES_MAX_PAYLOAD) {
        d->counters.length_errors++;
        return -1;
    }
    out->type = d->packet[1];
    out->seq = es_get_u16(d->packet + 2);
    out->len = len;
    out->payload = d->packet + ES_HEADER_SIZE;
    track_seq(d, out->seq);
    int bad = es_payload_check(out->type, out->payload, len);
    if (bad == ES_NACK_UNKNOWN_TYPE) {
        d->counters.unknown_types++;
        return ES_PUSH_REJECTED;
    }
    if (bad) {
        d->counters.payload_errors++;
        return ES_PUSH_REJECTED;
    }
    d->counters.frames_ok++;
    return ES_PUSH_FRAME;
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
        return ES_PUSH_NONE;
    }
    int r = ES_PUSH_NONE;
    if (d->overflow) {
        d->counters.length_errors++;
        d->bad_since_good++;
    } else if (d->used > 0) {
        r = finish_frame(d, out);
        if (r != ES_PUSH_FRAME)
            d->counters.bytes_discarded += (uint32_t)d->used + 1u;
        if (r < 0) {
            d->bad_since_good++;
            r = ES_PUSH_NONE;
        }
    }
    d->used = 0;
    d->overflow = 0;
    return r;
}
