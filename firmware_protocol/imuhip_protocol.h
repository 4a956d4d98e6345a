/*
 * imuhip sensor protocol v1 -- C99 reference encoder (see SPEC.md, the normative text).
 *
 * No allocation, no stdio, no platform dependencies: drop imuhip_protocol.{h,c} into firmware.
 * All multi-byte fields are little-endian on the wire regardless of the host CPU.
 */
#ifndef IMUHIP_PROTOCOL_H
#define IMUHIP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IMUHIP_PROTOCOL_VERSION 1u

#define IMUHIP_SERVICE_UUID "8e7f1a00-4b2c-4d5e-9f60-1a2b3c4d5e6f"
#define IMUHIP_DATA_CHAR_UUID "8e7f1a01-4b2c-4d5e-9f60-1a2b3c4d5e6f"
#define IMUHIP_CONTROL_CHAR_UUID "8e7f1a02-4b2c-4d5e-9f60-1a2b3c4d5e6f"
#define IMUHIP_INFO_CHAR_UUID "8e7f1a03-4b2c-4d5e-9f60-1a2b3c4d5e6f"

/* data packet flags (byte 1) */
#define IMUHIP_FLAG_MAG 0x01u
#define IMUHIP_FLAG_SATURATED 0x02u
#define IMUHIP_FLAG_CLOCK_RESYNC 0x04u
#define IMUHIP_FLAGS_RESERVED_MASK 0xF8u

#define IMUHIP_HEADER_LEN 9u
#define IMUHIP_CRC_LEN 2u
#define IMUHIP_OVERHEAD 11u
#define IMUHIP_MAX_SAMPLES 32u
#define IMUHIP_ATT_HEADER_LEN 3u
#define IMUHIP_LATENCY_BUDGET_MS 50u
#define IMUHIP_MAX_PACKET_LEN (IMUHIP_OVERHEAD + 2u * 9u * IMUHIP_MAX_SAMPLES) /* 587 */

#define IMUHIP_INFO_LEN 64u
#define IMUHIP_CH_ACC 0x01u
#define IMUHIP_CH_GYR 0x02u
#define IMUHIP_CH_MAG 0x04u

/* control commands (first byte of a write to the control characteristic) */
#define IMUHIP_CMD_START 0x01u
#define IMUHIP_CMD_STOP 0x02u
#define IMUHIP_CMD_SET_RATE 0x03u   /* + u16 rate_hz */
#define IMUHIP_CMD_SET_RANGES 0x04u /* + u16 acc_range_g + u16 gyr_range_dps */
#define IMUHIP_CMD_TIME_SYNC 0x05u  /* + u8 token */
#define IMUHIP_RESPONSE_BIT 0x80u

#define IMUHIP_STATUS_OK 0x00u
#define IMUHIP_STATUS_BAD_COMMAND 0x01u
#define IMUHIP_STATUS_BAD_VALUE 0x02u
#define IMUHIP_STATUS_BUSY 0x03u
#define IMUHIP_STATUS_MTU_TOO_SMALL 0x04u

/* negative return values of the encoders */
#define IMUHIP_ERR_NULL (-1)      /* a required pointer is NULL */
#define IMUHIP_ERR_COUNT (-2)     /* n outside 1..IMUHIP_MAX_SAMPLES */
#define IMUHIP_ERR_CHANNELS (-3)  /* channels not 6 or 9 */
#define IMUHIP_ERR_BUFFER (-4)    /* output buffer too small */
#define IMUHIP_ERR_VALUE (-5)     /* a value outside its allowed set */

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xor-out. "123456789" -> 0x29B1 */
uint16_t crc16_ccitt_false(const uint8_t *data, size_t len);

/* Bytes of a data packet with n samples of `channels` (6 or 9) int16 values: 11 + 2*channels*n. */
size_t imuhip_packet_len(unsigned n, unsigned channels);

/*
 * Encode one data packet into out[0 .. out_cap).
 *   seq         packet counter (wraps 65535 -> 0)
 *   t_first_us  device time of the first sample, µs (wraps at 2^32)
 *   flags       IMUHIP_FLAG_SATURATED | IMUHIP_FLAG_CLOCK_RESYNC (MAG is set from `channels`)
 *   samples     n * channels int16 counts, sample-major: acc xyz, gyr xyz[, mag xyz]
 * Returns the packet length (> 0) or a negative IMUHIP_ERR_*.
 */
int imuhip_encode_packet(uint8_t *out, size_t out_cap, uint16_t seq, uint32_t t_first_us,
                         uint8_t flags, const int16_t *samples, unsigned n, unsigned channels);

/* How many samples fit one notification at this ATT MTU (0: the sensor must refuse START). */
unsigned imuhip_max_samples_for_mtu(unsigned att_mtu, int has_mag);

/* How a sensor chooses n: as many as fit, at most 50 ms of samples, at least 1 (0 if none fit). */
unsigned imuhip_samples_per_packet(unsigned att_mtu, unsigned rate_hz, int has_mag);

typedef struct {
    uint8_t protocol_version;
    int has_mag;
    uint16_t rate_hz;
    uint16_t acc_range_g;
    uint16_t gyr_range_dps;
    float acc_lsb_m_s2;
    float gyr_lsb_rad_s;
    float mag_lsb_ut;
    uint8_t samples_per_packet;
    int streaming;
    const char *model;    /* up to 16 bytes, NUL padded */
    const char *serial;   /* up to 16 bytes */
    const char *firmware; /* up to 10 bytes */
} imuhip_info_t;

/* Encode the 64-byte info characteristic value. Returns 64 or a negative IMUHIP_ERR_*. */
int imuhip_encode_info(uint8_t *out, size_t out_cap, const imuhip_info_t *info);

/* Scale factors (float32, as stored in the info record). */
float imuhip_acc_lsb_m_s2(unsigned range_g);
float imuhip_gyr_lsb_rad_s(unsigned range_dps);

/* Control response [cmd | 0x80, status, payload...]. Returns its length or a negative error. */
int imuhip_encode_control_response(uint8_t *out, size_t out_cap, uint8_t cmd, uint8_t status,
                                   const uint8_t *payload, size_t payload_len);

/* TIME_SYNC response: [0x85, status, token, u32 device time µs]. Returns 7 or a negative error. */
int imuhip_encode_time_sync_response(uint8_t *out, size_t out_cap, uint8_t status, uint8_t token,
                                     uint32_t t_dev_us);

#ifdef __cplusplus
}
#endif

#endif /* IMUHIP_PROTOCOL_H */
