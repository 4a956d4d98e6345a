/* imuhip sensor protocol v1 -- C99 reference encoder. See imuhip_protocol.h and SPEC.md. */
#include "imuhip_protocol.h"

#include <string.h>

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t bits; /* IEEE 754 binary32 assumed, as on every BLE MCU */
    memcpy(&bits, &f, sizeof bits);
    put_u32(p, bits);
}

static void put_str(uint8_t *p, size_t width, const char *s)
{
    size_t i = 0;
    if (s != NULL) {
        for (; i < width && s[i] != '\0'; ++i) {
            p[i] = (uint8_t)s[i];
        }
    }
    for (; i < width; ++i) {
        p[i] = 0u;
    }
}

uint16_t crc16_ccitt_false(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    size_t i;
    int b;
    for (i = 0; i < len; ++i) {
        crc = (uint16_t)(crc ^ ((uint16_t)data[i] << 8));
        for (b = 0; b < 8; ++b) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

size_t imuhip_packet_len(unsigned n, unsigned channels)
{
    return (size_t)IMUHIP_OVERHEAD + 2u * (size_t)channels * (size_t)n;
}

int imuhip_encode_packet(uint8_t *out, size_t out_cap, uint16_t seq, uint32_t t_first_us,
                         uint8_t flags, const int16_t *samples, unsigned n, unsigned channels)
{
    size_t len, i, count, body;
    uint8_t f;
    if (out == NULL || samples == NULL) {
        return IMUHIP_ERR_NULL;
    }
    if (channels != 6u && channels != 9u) {
        return IMUHIP_ERR_CHANNELS;
    }
    if (n < 1u || n > IMUHIP_MAX_SAMPLES) {
        return IMUHIP_ERR_COUNT;
    }
    if (flags & (IMUHIP_FLAGS_RESERVED_MASK | IMUHIP_FLAG_MAG)) {
        return IMUHIP_ERR_VALUE; /* MAG follows from `channels`; reserved bits stay 0 */
    }
    len = imuhip_packet_len(n, channels);
    if (out_cap < len) {
        return IMUHIP_ERR_BUFFER;
    }
    f = (uint8_t)(flags | (channels == 9u ? IMUHIP_FLAG_MAG : 0u));
    out[0] = (uint8_t)IMUHIP_PROTOCOL_VERSION;
    out[1] = f;
    put_u16(out + 2, seq);
    put_u32(out + 4, t_first_us);
    out[8] = (uint8_t)n;
    count = (size_t)n * channels;
    for (i = 0; i < count; ++i) {
        put_u16(out + IMUHIP_HEADER_LEN + 2u * i, (uint16_t)samples[i]);
    }
    body = len - IMUHIP_CRC_LEN;
    put_u16(out + body, crc16_ccitt_false(out, body));
    return (int)len;
}

unsigned imuhip_max_samples_for_mtu(unsigned att_mtu, int has_mag)
{
    unsigned per = 2u * (has_mag ? 9u : 6u);
    unsigned room, fit;
    if (att_mtu <= IMUHIP_ATT_HEADER_LEN + IMUHIP_OVERHEAD) {
        return 0u;
    }
    room = att_mtu - IMUHIP_ATT_HEADER_LEN - IMUHIP_OVERHEAD;
    fit = room / per;
    return fit > IMUHIP_MAX_SAMPLES ? IMUHIP_MAX_SAMPLES : fit;
}

unsigned imuhip_samples_per_packet(unsigned att_mtu, unsigned rate_hz, int has_mag)
{
    unsigned fit = imuhip_max_samples_for_mtu(att_mtu, has_mag);
    unsigned budget = rate_hz * IMUHIP_LATENCY_BUDGET_MS / 1000u; /* floor(rate * 0.05) */
    if (fit == 0u) {
        return 0u;
    }
    if (budget < 1u) {
        budget = 1u;
    }
    return fit < budget ? fit : budget;
}

float imuhip_acc_lsb_m_s2(unsigned range_g)
{
    return (float)((double)range_g * 9.80665 / 32768.0);
}

float imuhip_gyr_lsb_rad_s(unsigned range_dps)
{
    return (float)((double)range_dps * 3.141592653589793 / 180.0 / 32768.0);
}

int imuhip_encode_info(uint8_t *out, size_t out_cap, const imuhip_info_t *info)
{
    if (out == NULL || info == NULL) {
        return IMUHIP_ERR_NULL;
    }
    if (out_cap < IMUHIP_INFO_LEN) {
        return IMUHIP_ERR_BUFFER;
    }
    out[0] = info->protocol_version;
    out[1] = (uint8_t)(IMUHIP_CH_ACC | IMUHIP_CH_GYR | (info->has_mag ? IMUHIP_CH_MAG : 0u));
    put_u16(out + 2, info->rate_hz);
    put_u16(out + 4, info->acc_range_g);
    put_u16(out + 6, info->gyr_range_dps);
    put_f32(out + 8, info->acc_lsb_m_s2);
    put_f32(out + 12, info->gyr_lsb_rad_s);
    put_f32(out + 16, info->mag_lsb_ut);
    out[20] = info->samples_per_packet;
    out[21] = (uint8_t)(info->streaming ? 1u : 0u);
    put_str(out + 22, 16u, info->model);
    put_str(out + 38, 16u, info->serial);
    put_str(out + 54, 10u, info->firmware);
    return (int)IMUHIP_INFO_LEN;
}

int imuhip_encode_control_response(uint8_t *out, size_t out_cap, uint8_t cmd, uint8_t status,
                                   const uint8_t *payload, size_t payload_len)
{
    size_t i;
    if (out == NULL || (payload == NULL && payload_len > 0u)) {
        return IMUHIP_ERR_NULL;
    }
    if (cmd & IMUHIP_RESPONSE_BIT) {
        return IMUHIP_ERR_VALUE;
    }
    if (out_cap < 2u + payload_len) {
        return IMUHIP_ERR_BUFFER;
    }
    out[0] = (uint8_t)(cmd | IMUHIP_RESPONSE_BIT);
    out[1] = status;
    for (i = 0; i < payload_len; ++i) {
        out[2u + i] = payload[i];
    }
    return (int)(2u + payload_len);
}

int imuhip_encode_time_sync_response(uint8_t *out, size_t out_cap, uint8_t status, uint8_t token,
                                     uint32_t t_dev_us)
{
    uint8_t payload[5];
    payload[0] = token;
    put_u32(payload + 1, t_dev_us);
    return imuhip_encode_control_response(out, out_cap, IMUHIP_CMD_TIME_SYNC, status, payload, 5u);
}
