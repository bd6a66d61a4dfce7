/* An LD_PRELOAD shim for the integration tests: a write to the broker that fails outright, as
 * one does when the broker has just closed the connection (a broker restart in the middle of a
 * burst). Once the file $SB_FAILWRITE_TRIGGER exists, the next writev() of a QoS 1 PUBLISH to a
 * TCP peer on port $SB_FAILWRITE_PORT shuts the socket down and fails with EPIPE; the file is
 * removed, so it happens once per file. paho writes every packet with writev(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int peer_port(int fd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);

    if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0) {
        return -1;
    }
    if (peer.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&peer)->sin_port);
    }
    if (peer.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
    }
    return -1;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
    static writev_fn real;
    const char *trigger = getenv("SB_FAILWRITE_TRIGGER");
    const char *port = getenv("SB_FAILWRITE_PORT");

    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "writev");
    }
    /* A PUBLISH at QoS 1, whatever its DUP and RETAIN flags: 0x32, 0x33, 0x3a, 0x3b. */
    if (trigger && port && iovcnt > 0 && iov[0].iov_len > 0 &&
        (((const unsigned char *)iov[0].iov_base)[0] & 0xf6) == 0x32 &&
        peer_port(fd) == (int)strtol(port, NULL, 10) && unlink(trigger) == 0) {
        fprintf(stderr, "failwrite: failing the write of a PUBLISH on fd %d\n", fd);
        shutdown(fd, SHUT_RDWR);
        errno = EPIPE;
        return -1;
    }
    return real(fd, iov, iovcnt);
}
