/*
 * Preloaded (LD_PRELOAD) into every process an HTTP function's instance
 * starts, so that servers written for CloudBase run unmodified while many
 * instances share one machine:
 *
 * - A TCP bind to port 9000, the port CloudBase's servers listen on, binds
 *   the instance's own port instead (CLOUDLET_INSTANCE_PORT).
 * - A TCP bind to the wildcard address (0.0.0.0, ::), which CloudBase
 *   recommends, binds loopback instead: the server is reached only through
 *   Cloudlet's proxy. An IPv6 socket gets the IPv4-mapped loopback address,
 *   so the proxy reaches it on 127.0.0.1 whichever family the server chose.
 * - The process dies with its parent (PR_SET_PDEATHSIG), so a server
 *   started by a bootstrap script does not outlive it.
 *
 * It covers every dynamically linked program that binds through the C
 * library: Node.js, Python, PHP, Ruby, Java. Statically linked ones (most Go
 * binaries) read the PORT variable instead.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define CLOUDBASE_PORT 9000

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static bind_fn real_bind;
static unsigned short instance_port;

__attribute__((constructor)) static void cloudlet_shim_init(void) {
    real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *port = getenv("CLOUDLET_INSTANCE_PORT");
    if (port != NULL) {
        long value = strtol(port, NULL, 10);
        if (value > 0 && value < 65536) {
            instance_port = (unsigned short)value;
        }
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static unsigned short mapped_port(unsigned short port_be) {
    if (instance_port != 0 && ntohs(port_be) == CLOUDBASE_PORT) {
        return htons(instance_port);
    }
    return port_be;
}

static int is_stream_socket(int fd) {
    int type = 0;
    socklen_t length = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM;
}

int bind(int fd, const struct sockaddr *addr, socklen_t length) {
    if (real_bind == NULL) {
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    }
    if (addr == NULL || !is_stream_socket(fd)) {
        return real_bind(fd, addr, length);
    }
    if (addr->sa_family == AF_INET && length >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in v4;
        memcpy(&v4, addr, sizeof v4);
        v4.sin_port = mapped_port(v4.sin_port);
        if (v4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }
        return real_bind(fd, (const struct sockaddr *)&v4, sizeof v4);
    }
    if (addr->sa_family == AF_INET6 && length >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 v6;
        memcpy(&v6, addr, sizeof v6);
        v6.sin6_port = mapped_port(v6.sin6_port);
        if (memcmp(&v6.sin6_addr, &in6addr_any, sizeof in6addr_any) == 0) {
            /* ::ffff:127.0.0.1 */
            static const unsigned char mapped_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                              0, 0, 0xff, 0xff, 127, 0, 0, 1};
            memcpy(&v6.sin6_addr, mapped_loopback, sizeof mapped_loopback);
        }
        return real_bind(fd, (const struct sockaddr *)&v6, sizeof v6);
    }
    return real_bind(fd, addr, length);
}
