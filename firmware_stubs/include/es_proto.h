/* edgesplit sensor link protocol v1: framing, CRC, message layouts (see protocol/PROTOCOL.md). */
#ifndef ES_PROTO_H
#define ES_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define ES_VERSION 1u
#define ES_MAX_PAYLOAD 512u
#define ES_HEADER_SIZE 6u
#define ES_CRC_SIZE 2u
#define ES_MAX_PACKET (ES_HEADER_SIZE + ES_MAX_PAYLOAD + ES_CRC_SIZE)
/* COBS adds at most one byte per 254, plus the leading code byte and the 0x00 delimiter. */
#define ES_MAX_WIRE (ES_MAX_PACKET + ES_MAX_PACKET / 254u + 2u)

enum es_msg_type {
    ES_HELLO = 0x01,
    ES_IMU_BATCH = 0x02,
    ES_BUTTON = 0x03,
    ES_BATTERY = 0x04,
    ES_AUDIO_FEATURES = 0x05,
    ES_LOG = 0x06,
    ES_STATUS = 0x07,
    ES_PING = 0x10,
    ES_START_STREAM = 0x11,
    ES_STOP_STREAM = 0x12,
    ES_SET_RATE = 0x13,
    ES_GET_INFO = 0x14,
    ES_ACK = 0x20,
    ES_NACK = 0x21
};

enum es_stream {
    ES_STREAM_IMU = 0,
    ES_STREAM_BUTTON,
    ES_STREAM_BATTERY,
    ES_STREAM_AUDIO,
    ES_STREAM_LOG,
    ES_STREAM_STATUS /* periodic STATUS and HELLO */
};

/* Fixed payload sizes (PROTOCOL.md). */
#define ES_HELLO_SIZE 25u
#define ES_STATUS_SIZE 46u

enum es_nack_reason { ES_NACK_UNKNOWN_TYPE = 1, ES_NACK_BAD_PAYLOAD = 2, ES_NACK_BAD_VALUE = 3 };

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR. */
uint16_t es_crc16(const uint8_t *data, size_t len);

/* COBS: encode len bytes into out (room for len + len/254 + 1); returns bytes written. */
size_t es_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* COBS decode (no delimiter in input); returns decoded length, or -1 on a malformed encoding. */
long es_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* Encode one frame, delimiter included, into out (ES_MAX_WIRE bytes); returns length or 0 if
 * the payload is too long. */
size_t es_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out);

/* The receiver counters of PROTOCOL.md, in its order. */
typedef struct {
    uint32_t frames_ok, crc_errors, cobs_errors, length_errors, version_errors, unknown_types,
        payload_errors, seq_gaps, seq_resets, bytes_discarded;
} es_counters;

/* What es_decoder_push made of a frame. */
enum es_push_result {
    ES_PUSH_NONE = 0,     /* no frame completed, or a frame that failed framing (counted) */
    ES_PUSH_FRAME = 1,    /* a valid frame of a known type with a well-formed payload */
    ES_PUSH_REJECTED = 2  /* framing valid but unknown type or bad payload size (counted);
                           * *out is filled so that a command handler can NACK it */
};

/* Payload check by type: 0 if well formed, else the counter it fails
 * (ES_NACK_UNKNOWN_TYPE or ES_NACK_BAD_PAYLOAD). */
int es_payload_check(uint8_t type, const uint8_t *payload, size_t len);

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload; /* valid until the next call to es_decoder_push */
} es_frame;

typedef struct {
    uint8_t buf[ES_MAX_WIRE];
    uint8_t packet[ES_MAX_WIRE]; /* room for any COBS body, so an over-long packet is a length
                                    error (as in the Python decoder), not a COBS error */
    size_t used;
    int overflow;
    int have_seq;      /* a frame has been seen since init/es_decoder_resync */
    uint16_t last_seq;
    uint32_t bad_since_good; /* frames lost to errors since the last good one */
    es_counters counters;
} es_decoder;

void es_decoder_init(es_decoder *d);
/* Forget the sequence (after a reconnect): the next frame starts a new run. */
void es_decoder_resync(es_decoder *d);
/* Push one received byte; returns an es_push_result and fills *out for FRAME and REJECTED. */
int es_decoder_push(es_decoder *d, uint8_t byte, es_frame *out);

/* Little-endian field helpers. */
static inline void es_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void es_put_u32(uint8_t *p, uint32_t v)
{
    es_put_u16(p, (uint16_t)v);
    es_put_u16(p + 2, (uint16_t)(v >> 16));
}
static inline uint16_t es_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t es_get_u32(const uint8_t *p)
{
    return (uint32_t)es_get_u16(p) | ((uint32_t)es_get_u16(p + 2) << 16);
}

#endif
