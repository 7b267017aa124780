/* bench/flood.c: the sender of bench/flood.py --sender c.
 *
 *   flood FILE HOST PORT SECONDS RATE
 *
 * FILE holds the datagrams to send, in turn: a little-endian uint32 count, then per datagram a
 * uint16 length and its bytes (at most 64 datagrams). They go to HOST:PORT with sendmmsg, as
 * fast as the kernel takes them (RATE 0) or paced to RATE datagrams per second, for SECONDS;
 * the number sent is printed. A compiled sender leaves the other CPU to the agent, which a
 * Python sender (a few tens of thousands per second, a core busy) does not.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: flood FILE HOST PORT SECONDS RATE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    uint32_t n = 0;
    if (!f || fread(&n, 4, 1, f) != 1 || n == 0 || n > MAX) {
        fprintf(stderr, "flood: %s: bad file\n", argv[1]);
        return 2;
    }
    static struct mmsghdr msgs[MAX];
    static struct iovec iov[MAX];
    for (uint32_t i = 0; i < n; i++) {
        uint16_t len = 0;
        if (fread(&len, 2, 1, f) != 1) return 2;
        char *buf = malloc(len);
        if (!buf || fread(buf, 1, len, f) != len) return 2;
        iov[i].iov_base = buf;
        iov[i].iov_len = len;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    fclose(f);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    if (s < 0 || inet_pton(AF_INET, argv[2], &to.sin_addr) != 1 || connect(s, (void *)&to, sizeof to) < 0) {
        perror("flood");
        return 1;
    }
    double seconds = atof(argv[4]), rate = atof(argv[5]);
    double start = now(), end = start + seconds;
    long sent = 0;
    for (double t = start; t < end; t = now()) {
        if (rate > 0 && sent >= (t - start) * rate) {
            struct timespec pause = {0, 50000}; /* 50 us: about 5 batches per ms at 100k/s */
            nanosleep(&pause, NULL);
            continue;
        }
        int r = sendmmsg(s, msgs, n, 0);
        if (r > 0) sent += r;
        else if (errno != ECONNREFUSED && errno != EAGAIN && errno != ENOBUFS && errno != EINTR) {
            perror("flood: sendmmsg");
            return 1;
        }
    }
    printf("%ld\n", sent);
    return 0;
}
