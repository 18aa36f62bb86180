// Load generator of the eBPF collector benchmark (bench/ebpf.py compiles it with gcc at run time).
//   tbpf-load refuse PORT SECONDS   connect() to 127.0.0.1:PORT (nothing listens) as fast as it can;
//                                   each refusal is a failed connect + a reset sent + a reset received
//   tbpf-load exec PATH SECONDS     fork + execve(PATH) + wait, as fast as it can: an exec and an exit
//   (run as a name ending in "nop": exit 0 at once, the exec storm's target)
// Prints the number of operations that succeeded as they should (refusals, or children exited 0).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long refuse(int port, double seconds) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long ok = 0, other = 0;
    double end = now() + seconds;
    while (1) {
        // A refused socket is back in CLOSE: connect() again on it (saves socket() and close()).
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { perror("socket"); exit(1); }
        for (int i = 0; i < 256; i++) {
            if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno == ECONNREFUSED)
                ok++;
            else
                other++;
        }
        close(fd);
        if (now() >= end) break;
    }
    if (other) fprintf(stderr, "tbpf-load: %ld connects were not refused\n", other);
    return ok;
}

static long exec_storm(const char *path, double seconds) {
    long ok = 0;
    double end = now() + seconds;
    char *const args[] = {(char *)path, NULL};
    char *const env[] = {NULL};
    while (now() < end) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); exit(1); }
        if (pid == 0) { execve(path, args, env); _exit(127); }
        int status;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    }
    return ok;
}

int main(int argc, char **argv) {
    size_t n = strlen(argv[0]);
    if (n >= 3 && strcmp(argv[0] + n - 3, "nop") == 0) return 0;
    if (argc == 4 && strcmp(argv[1], "refuse") == 0) {
        printf("%ld\n", refuse(atoi(argv[2]), atof(argv[3])));
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "exec") == 0) {
        printf("%ld\n", exec_storm(argv[2], atof(argv[3])));
        return 0;
    }
    fprintf(stderr, "usage: %s refuse PORT SECONDS | exec PATH SECONDS\n", argv[0]);
    return 2;
}
