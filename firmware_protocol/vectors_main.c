/*
 * Host-side test driver for the reference encoder (not for firmware: uses stdio).
 *
 * Reads commands from stdin, one per line, prints one hex line per command:
 *   CRC <hex bytes>                              -> crc as 4 hex digits
 *   PKT <seq> <t_first_us> <flags> <ch> <n> <v1> ... <v_{n*ch}>   -> packet hex
 *   INFO <ver> <has_mag> <rate> <acc_g> <gyr_dps> <spp> <streaming> <model> <serial> <fw>
 *                                                 -> 64-byte info hex (scale factors computed)
 *   SPP <att_mtu> <rate_hz> <has_mag>             -> decimal samples_per_packet
 *   TSYNC <status> <token> <t_dev_us>             -> time sync response hex
 * An encoder error prints "ERR <code>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imuhip_protocol.h"

static void print_hex(const uint8_t *b, int len)
{
    int i;
    for (i = 0; i < len; ++i) {
        printf("%02x", b[i]);
    }
    printf("\n");
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(void)
{
    static char line[65536];
    static uint8_t buf[1024];
    static int16_t samples[IMUHIP_MAX_SAMPLES * 9];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *tok = strtok(line, " \t\r\n");
        if (tok == NULL) {
            continue;
        }
        if (strcmp(tok, "CRC") == 0) {
            char *h = strtok(NULL, " \t\r\n");
            size_t n = 0;
            if (h != NULL) {
                for (; h[0] != '\0' && h[1] != '\0' && n < sizeof buf; h += 2) {
                    buf[n++] = (uint8_t)(hexval(h[0]) * 16 + hexval(h[1]));
                }
            }
            printf("%04x\n", crc16_ccitt_false(buf, n));
        } else if (strcmp(tok, "PKT") == 0) {
            unsigned long seq = strtoul(strtok(NULL, " "), NULL, 10);
            unsigned long t = strtoul(strtok(NULL, " "), NULL, 10);
            unsigned long flags = strtoul(strtok(NULL, " "), NULL, 10);
            unsigned ch = (unsigned)strtoul(strtok(NULL, " "), NULL, 10);
            unsigned n = (unsigned)strtoul(strtok(NULL, " "), NULL, 10);
            unsigned i;
            int len;
            for (i = 0; i < n * ch && i < IMUHIP_MAX_SAMPLES * 9u; ++i) {
                samples[i] = (int16_t)strtol(strtok(NULL, " \t\r\n"), NULL, 10);
            }
            len = imuhip_encode_packet(buf, sizeof buf, (uint16_t)seq, (uint32_t)t,
                                       (uint8_t)flags, samples, n, ch);
            if (len < 0) {
                printf("ERR %d\n", len);
            } else {
                print_hex(buf, len);
            }
        } else if (strcmp(tok, "INFO") == 0) {
            imuhip_info_t info;
            int len;
            info.protocol_version = (uint8_t)strtoul(strtok(NULL, " "), NULL, 10);
            info.has_mag = (int)strtol(strtok(NULL, " "), NULL, 10);
            info.rate_hz = (uint16_t)strtoul(strtok(NULL, " "), NULL, 10);
            info.acc_range_g = (uint16_t)strtoul(strtok(NULL, " "), NULL, 10);
            info.gyr_range_dps = (uint16_t)strtoul(strtok(NULL, " "), NULL, 10);
            info.samples_per_packet = (uint8_t)strtoul(strtok(NULL, " "), NULL, 10);
            info.streaming = (int)strtol(strtok(NULL, " "), NULL, 10);
            info.model = strtok(NULL, " \t\r\n");
            info.serial = strtok(NULL, " \t\r\n");
            info.firmware = strtok(NULL, " \t\r\n");
            info.acc_lsb_m_s2 = imuhip_acc_lsb_m_s2(info.acc_range_g);
            info.gyr_lsb_rad_s = imuhip_gyr_lsb_rad_s(info.gyr_range_dps);
            info.mag_lsb_ut = 0.1f;
            len = imuhip_encode_info(buf, sizeof buf, &info);
            if (len < 0) {
                printf("ERR %d\n", len);
            } else {
                print_hex(buf, len);
            }
        } else if (strcmp(tok, "SPP") == 0) {
            unsigned mtu = (unsigned)strtoul(strtok(NULL, " "), NULL, 10);
            unsigned rate = (unsigned)strtoul(strtok(NULL, " "), NULL, 10);
            int mag = (int)strtol(strtok(NULL, " \t\r\n"), NULL, 10);
            printf("%u\n", imuhip_samples_per_packet(mtu, rate, mag));
        } else if (strcmp(tok, "TSYNC") == 0) {
            unsigned st = (unsigned)strtoul(strtok(NULL, " "), NULL, 10);
            unsigned tokn = (unsigned)strtoul(strtok(NULL, " "), NULL, 10);
            unsigned long t = strtoul(strtok(NULL, " \t\r\n"), NULL, 10);
            int len = imuhip_encode_time_sync_response(buf, sizeof buf, (uint8_t)st, (uint8_t)tokn,
                                                       (uint32_t)t);
            if (len < 0) {
                printf("ERR %d\n", len);
            } else {
                print_hex(buf, len);
            }
        } else {
            printf("ERR unknown-command\n");
        }
        fflush(stdout);
    }
    return EXIT_SUCCESS;
}
