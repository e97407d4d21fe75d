/* A lean WebSocket client in C, for fan-out benchmarks where the clients must cost far less
 * than the server: thousands of connections in one process, one epoll loop.
 *
 *   lean_client HOST PORT COUNT SOURCE PATH SAMPLE_EVERY EVENTS [PAUSE_US]
 *
 * Connects COUNT clients from local address SOURCE (one address has ~28,000 ephemeral ports
 * towards one server port), sends one handshake each, then reads: unmasked server frames are
 * parsed from raw bytes, text frames counted (the first is the hello), pings answered with a
 * masked pong. For 1 connection in SAMPLE_EVERY it records when (CLOCK_MONOTONIC, the clock of
 * Python's time.monotonic()) the event with each seq <= EVENTS arrived. With PAUSE_US, once
 * counting it sleeps that long after each round of reads, so that frames pile up and one read
 * takes many: a flood costs it a fraction of the syscalls (arrivals are late by up to PAUSE_US).
 * Protocol with its parent on stdin/stdout, one line each:
 *   prints "connected N" once every connection is upgraded (or failed for good);
 *   reads a line (any) to start counting; then runs until every connection has EVENTS events
 *   or the line "stop" arrives on stdin;
 *   prints one JSON object: {"frames":..., "cpu_s":..., "last":..., "closed": connections the
 *   server closed meanwhile, "arrivals":[[seq, t],...]}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int upgraded;
    long frames;      /* text frames, the hello included */
    int sampled;
    char *buf;
    size_t len, cap;
} conn_t;

static double now_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int open_one(const char *host, int port, const char *source) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, source, &local.sin_addr);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { close(fd); return -1; }
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &peer.sin_addr);
    if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) { if (errno == EAGAIN || errno == EINTR) continue; return; }
        data += n; len -= (size_t)n;
    }
}

static void pong(int fd, const unsigned char *payload, size_t len) {
    unsigned char frame[2 + 4 + 125];
    if (len > 125) len = 125;
    frame[0] = 0x8A;
    frame[1] = 0x80 | (unsigned char)len;
    unsigned char mask[4] = {1, 2, 3, 4};
    memcpy(frame + 2, mask, 4);
    for (size_t i = 0; i < len; i++) frame[6 + i] = payload[i] ^ mask[i % 4];
    send_all(fd, (const char *)frame, 6 + len);
}

static long seq_of(const unsigned char *p, size_t len) {
    static const char key[] = "\"seq\":";
    for (size_t i = 0; i + sizeof key - 1 < len; i++) {
        if (memcmp(p + i, key, sizeof key - 1) == 0) {
            long v = 0;
            for (size_t j = i + sizeof key - 1; j < len && p[j] >= '0' && p[j] <= '9'; j++)
                v = v * 10 + (p[j] - '0');
            return v;
        }
    }
    return -1;
}

typedef struct {
    long events, total;
    double last;
    double *arrivals;
} tally_t;

/* Take every whole frame in the connection's buffer: count text frames, answer pings. */
static void parse(conn_t *c, tally_t *tally) {
    double t = now_monotonic();
    size_t pos = 0;
    unsigned char *b = (unsigned char *)c->buf;
    while (c->len - pos >= 2) {
        int opcode = b[pos] & 0x0F;
        uint64_t plen = b[pos + 1] & 0x7F;
        size_t start = pos + 2;
        if (plen == 126) {
            if (c->len - pos < 4) break;
            plen = ((uint64_t)b[pos + 2] << 8) | b[pos + 3];
            start = pos + 4;
        } else if (plen == 127) {
            if (c->len - pos < 10) break;
            plen = 0;
            for (int j = 0; j < 8; j++) plen = (plen << 8) | b[pos + 2 + j];
            start = pos + 10;
        }
        if (c->len < start + plen) break;
        if (opcode == 1) {
            c->frames++;
            tally->total++;
            tally->last = t;
            if (c->sampled) {
                long s = seq_of(b + start, (size_t)plen);
                if (s > 0 && s <= tally->events)
                    tally->arrivals[(size_t)(c->sampled - 1) * (size_t)(tally->events + 1) +
                                    (size_t)s] = t;
            }
        } else if (opcode == 9) {
            pong(c->fd, b + start, (size_t)plen);
        }
        pos = start + (size_t)plen;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
}

int main(int argc, char **argv) {
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT COUNT SOURCE PATH SAMPLE_EVERY EVENTS [PAUSE_US]\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1], *source = argv[4], *path = argv[5];
    int port = atoi(argv[2]), count = atoi(argv[3]), sample_every = atoi(argv[6]);
    long events = atol(argv[7]);
    long pause_us = argc == 9 ? atol(argv[8]) : 0;
    conn_t *conns = calloc((size_t)count, sizeof *conns);
    double *arrivals = NULL; /* [sampled index][seq] */
    int sampled = 0;
    for (int i = 0; i < count; i++)
        if (sample_every > 0 && i % sample_every == 0) sampled++;
    arrivals = calloc((size_t)sampled * (size_t)(events + 1), sizeof *arrivals);
    /* Counted from the first frame, the hello: pings are answered from the start too (a
     * connection opened early waits for the others, longer than the server's ping timeout). */
    tally_t tally = {.events = events, .total = 0, .last = 0, .arrivals = arrivals};
    int ep = epoll_create1(0);
    char request[512];
    int opened = 0, failed = 0, slot = 0;
    /* Connect in waves: the server's listen backlog is finite. */
    int next = 0, in_flight = 0;
    struct epoll_event evs[1024];
    while (opened + failed < count) {
        while (next < count && in_flight < 256) {
            int fd = open_one(host, port, source);
            conns[next].fd = fd;
            conns[next].sampled = (sample_every > 0 && next % sample_every == 0) ? slot++ + 1 : 0;
            if (fd < 0) { failed++; next++; continue; }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)next};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            next++;
            in_flight++;
        }
        int n = epoll_wait(ep, evs, 1024, 30000);
        if (n <= 0) break;
        for (int k = 0; k < n; k++) {
            conn_t *c = &conns[evs[k].data.u32];
            if (c->fd < 0) continue;
            if (c->upgraded) { /* frames before the others are in: the hello, pings */
                if (c->cap - c->len < 4096) {
                    c->cap = c->cap * 2 + 4096;
                    c->buf = realloc(c->buf, c->cap);
                }
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r > 0) {
                    c->len += (size_t)r;
                    parse(c, &tally);
                }
                continue;
            }
            if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
                close(c->fd); c->fd = -1; failed++; in_flight--; continue;
            }
            if ((evs[k].events & EPOLLOUT) && !c->buf) {
                int len = snprintf(request, sizeof request,
                    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n", path, host, port);
                send_all(c->fd, request, (size_t)len);
                c->cap = 4096;
                c->buf = malloc(c->cap);
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            if (evs[k].events & EPOLLIN) {
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r <= 0) { close(c->fd); c->fd = -1; failed++; in_flight--; continue; }
                c->len += (size_t)r;
                char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
                if (!end) continue;
                if (!memmem(c->buf, (size_t)(end - c->buf), " 101 ", 5)) {
                    close(c->fd); c->fd = -1; failed++; in_flight--; continue;
                }
                size_t rest = c->len - (size_t)(end + 4 - c->buf);
                memmove(c->buf, end + 4, rest);
                c->len = rest;
                c->upgraded = 1;
                opened++;
                in_flight--;
                parse(c, &tally);
            }
        }
    }
    printf("connected %d\n", opened);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;
    fcntl(0, F_SETFL, O_NONBLOCK);
    struct epoll_event in = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in);
    double cpu0 = cpu_seconds();
    long want = (long)opened * (events + 1);
    int stop = 0, closed = 0;
    while (!stop && tally.total < want) {
        int n = epoll_wait(ep, evs, 1024, 1000);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == UINT32_MAX) {
                char cmd[64];
                ssize_t r = read(0, cmd, sizeof cmd - 1);
                if (r == 0 || (r >= 4 && memcmp(cmd, "stop", 4) == 0)) stop = 1;
                continue;
            }
            conn_t *c = &conns[evs[k].data.u32];
            if (c->fd < 0) continue;
            if (c->cap - c->len < 65536) {
                c->cap = c->cap * 2 + 65536;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                closed++;
                continue;
            }
            c->len += (size_t)r;
            parse(c, &tally);
        }
        if (pause_us > 0 && n > 0) {
            struct timespec pause = {.tv_sec = pause_us / 1000000,
                                     .tv_nsec = pause_us % 1000000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    double cpu = cpu_seconds() - cpu0;
    printf("{\"frames\":%ld,\"cpu_s\":%.3f,\"last\":%.6f,\"closed\":%d,\"arrivals\":[",
           tally.total - opened, cpu, tally.last, closed);
    int first = 1;
    for (int i = 0; i < sampled; i++)
        for (long s = 1; s <= events; s++) {
            double a = arrivals[(size_t)i * (size_t)(events + 1) + (size_t)s];
            if (a > 0) { printf("%s[%ld,%.6f]", first ? "" : ",", s, a); first = 0; }
        }
    printf("]}\n");
    fflush(stdout);
    return 0;
}
