/*
 * dockyard-shim: the per-container monitor of dockyard (in the spirit of conmon).
 *
 * One shim runs per container (or per exec).  It owns the container's stdio, writes
 * Docker json-file logs with rotation, feeds stdin and resizes the pty for attach
 * clients, starts the container (or runs the exec) on request, reaps the process and
 * records its exit status in STATE/exit.  It runs in its own session as a child
 * subreaper, so it outlives the daemon that launched it.
 *
 * Launch: the invoking process forks; the child becomes the shim.  The invoking
 * process prints exactly one line, "ok 0 <shim-pid>" or "error <message>", and exits 0
 * or 1.  Nothing runs yet: the first start request runs the container (RUNTIME run
 * --detach; with a terminal create, size the pty, start) or the exec (RUNTIME exec
 * --detach) and answers with its pid.
 *
 * Attach socket STATE/attach.sock: the client's first byte is 'A' (attach: output,
 * replies and exit) or 'W' (wait: the exit frame only).  Then frames both ways:
 *   u8 type, u32 big-endian payload length, payload.
 * shim -> client: 1 stdout, 2 stderr, 3 exit ("137"), 4 started ("<pid>"), 5 error (text)
 * client -> shim: 0 stdin data, 1 close stdin, 2 resize ("<rows> <cols>"), 4 start
 *
 * Only libc is used.  Single-threaded: one poll() loop; SIGCHLD arrives on a signalfd.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 16384             /* read size; also the longest log entry (partial line) */
#define MAX_CLIENTS 64          /* attach clients served at once; more are refused */
#define CLIENT_BACKLOG 65536    /* output queued for a slow client before it is dropped */
#define STDIN_MAX 65536         /* stdin queued for a container that does not read */
#define CTL_MAX 64              /* longest control payload kept (resize) */
#define DRAIN_MS 2000           /* after the exit, how long to wait for output EOF */
#define FLUSH_MS 2000           /* at the end, how long clients get to take the exit frame */

enum { C_STDIN = 0, C_CLOSE_STDIN = 1, C_RESIZE = 2, C_START = 4 };            /* client -> shim */
enum { S_STDOUT = 1, S_STDERR = 2, S_EXIT = 3, S_STARTED = 4, S_ERROR = 5 };  /* shim -> client */

/* ---- options, paths and state ------------------------------------------------------ */

static struct {
    const char *runtime, *root, *id, *bundle, *state, *log, *process;
    long long log_max_size;
    int log_max_files, tty, stdin, hide_cgroup2, exec;
} opt = {.log_max_files = 1};

static char p_pid[PATH_MAX], p_attach[PATH_MAX], p_console[PATH_MAX];
static char p_exit[PATH_MAX], p_exit_tmp[PATH_MAX];

static int report_fd = -1;      /* pipe to the launcher until setup is reported */
static int devnull = -1, sig_fd = -1, attach_listen = -1, console_listen = -1;
static int child_in = -1, child_out = -1, child_err = -1;  /* stdio given to the runtime */
static int capture_rd = -1;     /* the runtime's own stderr in tty mode */
static int master_fd = -1;      /* pty master (tty mode) */
static struct winsize winsize;  /* last requested size (ws_row 0: none yet) */
static int created, started, exited, exit_code, exit_signal;
static pid_t child_pid;         /* the container's init / the exec'd process */
static char finished_at[64];
static long long drain_deadline;

struct stream {                 /* one output of the container */
    int fd, type;
    const char *name;
    size_t len;                 /* bytes of the current unfinished line */
    unsigned char line[CHUNK];
};
static struct stream streams[2] = {{-1, S_STDOUT, "stdout", 0, {0}},
                                   {-1, S_STDERR, "stderr", 0, {0}}};

static int stdin_fd = -1;       /* pipe write end, or a dup of the pty master */
static int stdin_closing;       /* close once the queue is written */
static size_t stdin_len;
static unsigned char stdin_buf[STDIN_MAX];

struct client {
    int fd;
    char mode;                  /* 0 until the first byte, then 'A' or 'W' */
    int rd_closed, wrote_stdin;
    unsigned char hdr[5];       /* header of the frame being read */
    int hdr_len;
    uint32_t remaining;         /* its payload bytes still to come */
    char ctl[CTL_MAX];          /* payload of a control frame */
    size_t ctl_len;
    char *out;                  /* output the socket did not take yet */
    size_t out_len;
};
static struct client clients[MAX_CLIENTS];
static int nclients;
static int had_clients;  /* someone connected: if all stay away before a start, none will */
static long long idle_since;  /* not started, every client gone: since when (ms) */
#define ABANDON_MS 2000  /* resize clients come and go: only a lasting absence counts */

static unsigned char obuf[5 + CHUNK];   /* an output frame: header + data */
static char logbuf[6 * CHUNK + 128];    /* one json-file line */
static int log_fd = -1;
static long long log_size;

/* ---- small helpers ----------------------------------------------------------------- */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC time with nanoseconds, as Docker writes it. */
static void rfc3339(char *buf, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void close_fd(int *fd) {
    if (*fd >= 0 && *fd != devnull) close(*fd);
    *fd = -1;
}

/* Makes runtime output one line: newlines and tabs become spaces, runs and ends trimmed. */
static void one_line(char *s) {
    char *o = s, *start = s;
    for (; *s; s++) {
        char c = (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s;
        if (c == ' ' && (o == start || o[-1] == ' ')) continue;
        *o++ = c;
    }
    while (o > start && o[-1] == ' ') o--;
    *o = 0;
}

static pid_t spawn_runtime(char *const args[], int in, int out, int err, int hide);
static int wait_pid(pid_t pid);

/* Setup failed: report to the launcher (or print, before the fork) and exit. */
static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    one_line(msg);
    if (report_fd < 0) { printf("error %s\n", msg); exit(1); }
    dprintf(report_fd, "error %s\n", msg);
    if (created) {  /* do not leave a half-set-up container behind */
        char *args[] = {"delete", "-f", (char *)opt.id, NULL};
        wait_pid(spawn_runtime(args, devnull, devnull, devnull, 0));
    }
    unlink(p_attach);
    unlink(p_console);
    _exit(1);
}

/* Closes every fd >= lowest: the shim must not keep the daemon's fds open. */
static void close_from(int lowest) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lowest, ~0U, 0) == 0) return;
#endif
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd >= lowest && fd != dirfd(d)) close(fd);
    }
    if (d) closedir(d);
}

/* A listening, non-blocking unix stream socket at path, mode 0600. */
static int listen_unix(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) fail("socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    unlink(path);
    mode_t old = umask(077);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (r < 0 || listen(fd, 128) < 0) fail("bind %s: %s", path, strerror(errno));
    return fd;
}

static pid_t read_pid_file(void) {
    char buf[32] = {0};
    int fd = open(p_pid, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? (pid_t)atoi(buf) : 0;
}

/* Whatever a failed runtime left in fd (read without blocking), as one line. */
static void read_capture(int fd, char *buf, size_t size) {
    size_t len = 0;
    if (fd >= 0) set_nonblock(fd);
    while (fd >= 0 && len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    one_line(buf);
}

/* ---- running the OCI runtime ------------------------------------------------------- */

/* Forks RUNTIME [--root DIR] args... with the given stdio; returns its pid. */
static pid_t spawn_runtime(char *const args[], int in, int out, int err, int hide) {
    char *argv[24];
    int k = 0;
    argv[k++] = (char *)opt.runtime;
    if (opt.root) { argv[k++] = "--root"; argv[k++] = (char *)opt.root; }
    for (int i = 0; args[i] && k < 23; i++) argv[k++] = args[i];
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid != 0) return pid;

    /* child: undo the shim's signal setup, which exec would otherwise pass on */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
    if (hide) {
        /* On a hybrid cgroup host crun refuses to create containers.  Hide the cgroup2
         * mount from this runtime process only: crun then sees plain cgroup v1. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            (umount2("/sys/fs/cgroup/unified", MNT_DETACH) < 0 && errno != EINVAL &&
             errno != ENOENT)) {
            dprintf(2, "hide-cgroup2: %s\n", strerror(errno));
            _exit(127);
        }
    }
    execv(opt.runtime, argv);
    dprintf(2, "exec %s: %s\n", opt.runtime, strerror(errno));
    _exit(127);
}

/* Waits for one child; its exit code (128+signal if killed), -1 on error. */
static int wait_pid(pid_t pid) {
    int st;
    if (pid < 0) return -1;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Builds "<command> [--flag ...] ID" with --pid-file and the console socket for tty. */
static int runtime_args(char **args, const char *command, const char *const *flags) {
    int k = 0;
    args[k++] = (char *)command;
    while (*flags) args[k++] = (char *)*flags++;
    args[k++] = "--pid-file";
    args[k++] = p_pid;
    if (opt.tty) { args[k++] = "--console-socket"; args[k++] = p_console; }
    args[k++] = (char *)opt.id;
    args[k] = NULL;
    unlink(p_pid);
    return k;
}

/* Takes the pty master the runtime sent on the console socket (SCM_RIGHTS). */
static int receive_master(void) {
    struct pollfd p = {console_listen, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return -1;
    int conn = accept4(console_listen, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) return -1;
    struct timeval tv = {5, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char data[256];
    struct iovec iov = {data, sizeof data};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n;
    do n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
    int fd = -1;
    struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(h), sizeof fd);
    close(conn);
    return fd;
}

/* The pty master arrived: it is the output stream and (with --stdin) the stdin. */
static void use_master(int fd) {
    master_fd = streams[0].fd = fd;
    set_nonblock(fd);
    if (winsize.ws_row) ioctl(fd, TIOCSWINSZ, &winsize);
    if (opt.stdin) stdin_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close_fd(&console_listen);
    unlink(p_console);
}

/* Creates the pipes (or the console socket) the runtime hands to the process. */
static void setup_stdio(void) {
    int p[2];
    child_in = child_out = child_err = devnull;
    if (opt.tty) {  /* the runtime's own stderr goes to a pipe, to report its errors */
        console_listen = listen_unix(p_console);
        if (pipe2(p, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
        capture_rd = p[0];
        child_err = p[1];
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (i == 2 && !opt.stdin) break;
        if (pipe2(p, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
        if (i == 2) { child_in = p[0]; set_nonblock(stdin_fd = p[1]); continue; }
        set_nonblock(streams[i].fd = p[0]);
        *(i == 0 ? &child_out : &child_err) = p[1];
    }
}

/* The shim keeps only its own ends once the runtime has handed ours to the process. */
static void close_child_ends(void) {
    close_fd(&child_in);
    close_fd(&child_out);
    close_fd(&child_err);
}

/* The runtime failed: its message (non-tty: it wrote to the process's stderr pipe). */
static void runtime_failure(char *buf, size_t size, const char *what, int status) {
    read_capture(opt.tty ? capture_rd : streams[1].fd, buf, size);
    if (!buf[0]) snprintf(buf, size, "runtime %s failed (exit status %d)", what, status);
}

/* ---- json-file log ----------------------------------------------------------------- */

static void log_open(int truncate) {
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
    struct stat st;
    log_fd = open(opt.log, flags, 0640);
    log_size = (log_fd >= 0 && fstat(log_fd, &st) == 0) ? st.st_size : 0;
}

/* PATH.(n-1) -> PATH.n ... PATH -> PATH.1, keeping max-files files in all; reopen PATH. */
static void log_rotate(void) {
    char src[PATH_MAX + 16], dst[PATH_MAX + 16];
    close_fd(&log_fd);
    for (int i = opt.log_max_files - 1; i >= 1; i--) {
        if (i == 1) snprintf(src, sizeof src, "%s", opt.log);
        else snprintf(src, sizeof src, "%s.%d", opt.log, i - 1);
        snprintf(dst, sizeof dst, "%s.%d", opt.log, i);
        rename(src, dst);  /* ENOENT is fine: fewer files so far */
    }
    log_open(1);  /* max-files 1: PATH itself is truncated */
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid;
 * *partial is set when the bytes are a valid but cut-off prefix. */
static size_t utf8_seq(const unsigned char *s, size_t n, int *partial) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    *partial = 0;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2;
    else if (c >= 0xF0 && c <= 0xF4) need = 3;
    else return 0;
    if (c == 0xE0) lo = 0xA0;       /* no overlong forms */
    if (c == 0xED) hi = 0x9F;       /* no UTF-16 surrogates */
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;       /* nothing above U+10FFFF */
    for (size_t i = 1; i <= need; i++, lo = 0x80, hi = 0xBF) {
        if (i >= n) { *partial = 1; return 0; }
        if (s[i] < lo || s[i] > hi) return 0;
    }
    return need + 1;
}

/* Bytes at the end of s that begin a character cut off by the 16 KiB split. */
static size_t utf8_cut_tail(const unsigned char *s, size_t n) {
    int partial;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        if (s[n - k] < 0x80) return 0;
        if (s[n - k] >= 0xC0) {
            utf8_seq(s + n - k, k, &partial);
            return partial ? k : 0;
        }
    }
    return 0;
}

/* Writes s as the inside of a JSON string; returns the length (at most 6 * n).  Valid
 * UTF-8 passes through, invalid bytes become \ufffd, control characters are escaped. */
static size_t json_escape(char *out, const unsigned char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    int partial;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i, &partial);
            memcpy(o, k ? (const char *)s + i : "\\ufffd", k ? k : 6);
            o += k ? k : 6;
            i += k ? k : 1;
            continue;
        }
        i++;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : NULL;
        if (esc) { memcpy(o, esc, 2); o += 2; }
        else if (c < 0x20 || c == 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else *o++ = (char)c;
    }
    return (size_t)(o - out);
}

/* Appends one json-file entry, rotating first if the file would grow past max-size. */
static void log_entry(const struct stream *st, const unsigned char *s, size_t n) {
    char ts[64];
    if (!opt.log || n == 0) return;
    rfc3339(ts, sizeof ts);
    memcpy(logbuf, "{\"log\":\"", 8);
    size_t k = 8 + json_escape(logbuf + 8, s, n);
    k += (size_t)snprintf(logbuf + k, sizeof logbuf - k,
                          "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", st->name, ts);
    if (opt.log_max_size > 0 && log_size > 0 && log_size + (long long)k > opt.log_max_size)
        log_rotate();
    if (log_fd < 0) log_open(0);  /* try again later; a log problem must not stop us */
    if (log_fd >= 0 && write_all(log_fd, logbuf, k) == 0) log_size += (long long)k;
}

/* Splits output into log entries: at '\n' (kept), or after 16 KiB of one line. */
static void stream_consume(struct stream *st, const unsigned char *s, size_t n) {
    while (n > 0) {
        size_t room = CHUNK - st->len, take = n < room ? n : room;
        const unsigned char *nl = memchr(s, '\n', take);
        if (nl) take = (size_t)(nl - s) + 1;
        memcpy(st->line + st->len, s, take);
        st->len += take;
        s += take;
        n -= take;
        if (nl) { log_entry(st, st->line, st->len); st->len = 0; }
        else if (st->len == CHUNK) {
            size_t keep = utf8_cut_tail(st->line, st->len);
            log_entry(st, st->line, st->len - keep);
            memmove(st->line, st->line + st->len - keep, keep);
            st->len = keep;
        }
    }
}

static void stream_close(struct stream *st) {
    if (st->fd == master_fd) master_fd = -1;
    close_fd(&st->fd);
    log_entry(st, st->line, st->len);  /* the partial last line */
    st->len = 0;
}

/* ---- container stdin --------------------------------------------------------------- */

static void stdin_flush(void) {
    while (stdin_fd >= 0 && stdin_len > 0) {
        ssize_t w = write(stdin_fd, stdin_buf, stdin_len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (w <= 0) { stdin_len = 0; stdin_closing = 1; break; }  /* EPIPE: stdin closed */
        stdin_len -= (size_t)w;
        memmove(stdin_buf, stdin_buf + w, stdin_len);
    }
    if (stdin_closing && stdin_len == 0) close_fd(&stdin_fd);
}

/* Queues stdin for the process; what does not fit in STDIN_MAX is dropped. */
static void stdin_push(const unsigned char *data, size_t n) {
    if (!opt.stdin || stdin_closing) return;
    if (n > STDIN_MAX - stdin_len) n = STDIN_MAX - stdin_len;
    memcpy(stdin_buf + stdin_len, data, n);
    stdin_len += n;
    stdin_flush();
}

static void stdin_close(void) {
    stdin_closing = 1;
    stdin_flush();
}

/* ---- attach clients ---------------------------------------------------------------- */

/* A client that wrote stdin stopped sending; if it was the last one, close stdin. */
static void stdin_writer_gone(struct client *c) {
    if (!c->wrote_stdin) return;
    c->wrote_stdin = 0;
    for (int i = 0; i < nclients; i++)
        if (clients[i].fd >= 0 && clients[i].wrote_stdin) return;
    stdin_close();
}

static void client_drop(struct client *c) {
    if (c->fd < 0) return;
    close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->out_len = 0;
    stdin_writer_gone(c);
}

/* Sends without ever blocking: what the socket does not take is queued, and a client
 * whose queue passes CLIENT_BACKLOG is dropped rather than stalling the container. */
static void client_send(struct client *c, const void *data, size_t n) {
    const char *p = data;
    ssize_t w = 0;
    if (c->fd < 0) return;
    if (c->out_len == 0) {
        do w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { client_drop(c); return; }
        if (w > 0) p += w, n -= (size_t)w;
        if (n == 0) return;
    }
    char *grown = c->out_len + n <= CLIENT_BACKLOG ? realloc(c->out, c->out_len + n) : NULL;
    if (!grown) { client_drop(c); return; }
    memcpy(grown + c->out_len, p, n);
    c->out = grown;
    c->out_len += n;
}

static void client_flush(struct client *c) {
    ssize_t w;
    do w = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { client_drop(c); return; }
    if (w <= 0) return;
    c->out_len -= (size_t)w;
    memmove(c->out, c->out + w, c->out_len);
    if (c->out_len == 0) { free(c->out); c->out = NULL; }
}

static void put_header(unsigned char *h, int type, size_t n) {
    h[0] = (unsigned char)type;
    for (int i = 0; i < 4; i++) h[1 + i] = (unsigned char)(n >> (24 - 8 * i));
}

/* Sends a short text frame (exit, started, error) to one client. */
static void send_text(struct client *c, int type, const char *text) {
    unsigned char buf[5 + 1024];
    size_t n = strlen(text) < 1024 ? strlen(text) : 1024;
    put_header(buf, type, n);
    memcpy(buf + 5, text, n);
    client_send(c, buf, 5 + n);
}

static void accept_clients(void) {
    for (;;) {
        int fd = accept4(attach_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0 && errno == EINTR) continue;
        if (fd < 0) return;
        if (nclients >= MAX_CLIENTS) { close(fd); continue; }  /* refused: too many */
        memset(&clients[nclients], 0, sizeof clients[nclients]);
        clients[nclients++].fd = fd;
        had_clients = 1;
    }
}

/* Forgets dropped clients (only between poll rounds, so pointers stay valid). */
static void compact_clients(void) {
    int k = 0;
    for (int i = 0; i < nclients; i++)
        if (clients[i].fd >= 0) clients[k++] = clients[i];
    nclients = k;
}

/* ---- starting ---------------------------------------------------------------------- */

static void record_exit(int status);

/* Exec mode: RUNTIME exec --detach; the process reparents to us (we are a subreaper). */
static void start_exec(struct client *c) {
    const char *flags[] = {"--detach", "--process", opt.process, opt.tty ? "--tty" : NULL, NULL};
    char *args[16], err[2048];
    runtime_args(args, "exec", flags);
    int st = wait_pid(spawn_runtime(args, child_in, child_out, child_err, 0)), master = -1;
    if (st == 0 && (child_pid = read_pid_file()) > 0 && opt.tty) master = receive_master();
    close_child_ends();
    if (st != 0 || child_pid <= 0 || (opt.tty && master < 0)) {
        runtime_failure(err, sizeof err, "exec", st);
        if (st == 0) snprintf(err, sizeof err, "runtime exec gave no %s",
                              child_pid <= 0 ? "pid" : "terminal");
        send_text(c, S_ERROR, err);
        child_pid = 0;
        record_exit(126 << 8);  /* like Docker: an exec that cannot start exits 126 */
    } else {
        if (master >= 0) use_master(master);
        snprintf(err, sizeof err, "%d", (int)child_pid);
        send_text(c, S_STARTED, err);
    }
    close_fd(&capture_rd);
}

/* With a terminal the pty must have its size before the process runs: RUNTIME create, size
 * the pty we received, then RUNTIME start.  0, or the start's failure message in msg. */
static int start_created(char *msg, size_t size) {
    char *args[] = {"start", (char *)opt.id, NULL};
    int cap[2];
    msg[0] = 0;
    if (pipe2(cap, O_CLOEXEC) < 0) { snprintf(msg, size, "%s", strerror(errno)); return -1; }
    int st = wait_pid(spawn_runtime(args, devnull, cap[1], cap[1], 0));
    close(cap[1]);
    read_capture(cap[0], msg, size);
    close(cap[0]);
    if (st != 0 && !msg[0]) snprintf(msg, size, "runtime start failed (exit status %d)", st);
    return st;
}

/* Container mode, on the first start request: RUNTIME run --detach (create and start in one
 * runtime call: one exec of the runtime fewer than create + start), or create + start with a
 * terminal.  The process reparents to us (we are a subreaper).  On failure the runtime's
 * message goes to the client and the shim ends: nothing is left created. */
static void run_container(struct client *c) {
    const char *flags[] = {"--detach", "--bundle", opt.bundle, NULL};
    char *args[16], err[2048];
    runtime_args(args, opt.tty ? "create" : "run", opt.tty ? flags + 1 : flags);
    int st = wait_pid(spawn_runtime(args, child_in, child_out, child_err, opt.hide_cgroup2));
    int master = -1;
    if (st == 0 && (child_pid = read_pid_file()) > 0) {
        created = 1;
        if (opt.tty) master = receive_master();
    }
    close_child_ends();
    int failed = st != 0 || child_pid <= 0 || (opt.tty && master < 0);
    if (failed) {
        runtime_failure(err, sizeof err, opt.tty ? "create" : "run", st);
        if (st == 0) snprintf(err, sizeof err, "runtime %s gave no %s", opt.tty ? "create" : "run",
                              child_pid <= 0 ? "pid" : "terminal");
    } else {
        if (master >= 0) use_master(master);
        if (opt.tty && start_created(err, sizeof err) != 0) failed = 1;
    }
    if (failed) {
        send_text(c, S_ERROR, err);
        if (created) {  /* do not leave a half-set-up container behind */
            char *del[] = {"delete", "-f", (char *)opt.id, NULL};
            wait_pid(spawn_runtime(del, devnull, devnull, devnull, 0));
        }
        child_pid = 0;
        record_exit(st > 0 && st < 256 ? st << 8 : 127 << 8);
    } else {
        snprintf(err, sizeof err, "%d", (int)child_pid);
        send_text(c, S_STARTED, err);
    }
    close_fd(&capture_rd);
}

/* Only the first start request counts. */
static void handle_start(struct client *c) {
    if (started) { send_text(c, S_ERROR, "already started"); return; }
    started = 1;
    if (opt.exec) start_exec(c);
    else run_container(c);
}

/* ---- client input ------------------------------------------------------------------ */

static void frame_done(struct client *c) {
    unsigned rows, cols;
    c->hdr_len = 0;
    c->ctl[c->ctl_len] = 0;
    if (c->hdr[0] == C_CLOSE_STDIN) stdin_close();
    else if (c->hdr[0] == C_START) handle_start(c);
    else if (c->hdr[0] == C_RESIZE && sscanf(c->ctl, "%u %u", &rows, &cols) == 2 &&
             rows < 65536 && cols < 65536) {
        winsize.ws_row = (unsigned short)rows;
        winsize.ws_col = (unsigned short)cols;
        if (master_fd >= 0) ioctl(master_fd, TIOCSWINSZ, &winsize);
    }  /* unknown types are ignored */
}

static void client_input(struct client *c) {
    static unsigned char buf[CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 || (n == 0 && c->mode == 0)) { client_drop(c); return; }
    if (n == 0) {  /* the client shut its sending side: it may still read */
        c->rd_closed = 1;
        stdin_writer_gone(c);
        return;
    }
    size_t i = 0;
    if (c->mode == 0) {
        if (buf[0] != 'A' && buf[0] != 'W') { client_drop(c); return; }
        c->mode = (char)buf[i++];
    }
    while (i < (size_t)n && c->fd >= 0) {
        if (c->hdr_len < 5) {  /* header byte */
            c->hdr[c->hdr_len++] = buf[i++];
            if (c->hdr_len < 5) continue;
            c->remaining = (uint32_t)c->hdr[1] << 24 | (uint32_t)c->hdr[2] << 16 |
                           (uint32_t)c->hdr[3] << 8 | c->hdr[4];
            c->ctl_len = 0;
            if (c->remaining == 0) frame_done(c);
            continue;
        }
        size_t take = (size_t)n - i < c->remaining ? (size_t)n - i : c->remaining;
        if (c->hdr[0] == C_STDIN) {  /* stdin streams through; no frame buffering */
            c->wrote_stdin = 1;
            stdin_push(buf + i, take);
        } else {
            size_t keep = CTL_MAX - 1 - c->ctl_len;
            keep = take < keep ? take : keep;
            memcpy(c->ctl + c->ctl_len, buf + i, keep);
            c->ctl_len += keep;
        }
        i += take;
        c->remaining -= (uint32_t)take;
        if (c->remaining == 0) frame_done(c);
    }
}

/* ---- the end ----------------------------------------------------------------------- */

static void record_exit(int status) {
    exited = 1;
    exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    exit_code = exit_signal ? 128 + exit_signal : WEXITSTATUS(status);
    rfc3339(finished_at, sizeof finished_at);
    drain_deadline = now_ms() + DRAIN_MS;
}

/* SIGCHLD: reap everything (we are a subreaper); note our process's status. */
static void reap(void) {
    struct signalfd_siginfo si;
    int st;
    pid_t p;
    while (read(sig_fd, &si, sizeof si) == sizeof si) {}
    while ((p = waitpid(-1, &st, WNOHANG)) != 0) {
        if (p < 0 && errno == EINTR) continue;
        if (p < 0) return;
        if (p == child_pid && !exited) record_exit(st);
    }
}

/* STATE/exit, atomically: write exit.tmp, rename.  No fsync: the file is runtime state in the
 * exec-root (tmpfs on most hosts) for a daemon that restarts while the machine keeps running;
 * after a machine crash no container survives and the daemon settles them without it.  The
 * fsyncs cost a journal commit on the exit path of every container and exec. */
static void write_exit_file(void) {
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "{\"exit_code\":%d,\"signal\":%d,\"oom\":false,\"finished_at\":\"%s\"}\n",
                     exit_code, exit_signal, finished_at);
    int fd = open(p_exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    int ok = write_all(fd, buf, (size_t)n) == 0;
    close(fd);
    if (ok) rename(p_exit_tmp, p_exit);
}

/* The process is gone and its output drained: record, tell every client, exit. */
static void finish(void) __attribute__((noreturn));
static void finish(void) {
    char text[16];
    for (int i = 0; i < 2; i++)
        if (streams[i].fd >= 0) stream_close(&streams[i]);
    write_exit_file();
    accept_clients();  /* late connectors get the exit frame too */
    close_fd(&attach_listen);
    unlink(p_attach);
    unlink(p_console);
    snprintf(text, sizeof text, "%d", exit_code);
    for (int i = 0; i < nclients; i++) send_text(&clients[i], S_EXIT, text);
    /* give clients with queued output a little time to take it */
    for (long long deadline = now_ms() + FLUSH_MS;;) {
        struct pollfd pfd[MAX_CLIENTS];
        int idx[MAX_CLIENTS], n = 0;
        for (int i = 0; i < nclients; i++)
            if (clients[i].fd >= 0 && clients[i].out_len > 0) {
                pfd[n] = (struct pollfd){clients[i].fd, POLLOUT, 0};
                idx[n++] = i;
            }
        long long left = deadline - now_ms();
        if (n == 0 || left <= 0 || (poll(pfd, (nfds_t)n, (int)left) < 0 && errno != EINTR))
            break;
        for (int j = 0; j < n; j++) {
            if (pfd[j].revents & (POLLERR | POLLHUP | POLLNVAL)) client_drop(&clients[idx[j]]);
            else if (pfd[j].revents & POLLOUT) client_flush(&clients[idx[j]]);
        }
    }
    for (int i = 0; i < nclients; i++) client_drop(&clients[i]);
    _exit(0);
}

/* ---- main loop --------------------------------------------------------------------- */

static void stream_input(struct stream *st) {
    ssize_t r;
    do r = read(st->fd, obuf + 5, CHUNK); while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r <= 0) { stream_close(st); return; }  /* EOF, or EIO: the pty's other side is gone */
    put_header(obuf, st->type, (size_t)r);
    for (int i = 0; i < nclients; i++)
        if (clients[i].mode == 'A') client_send(&clients[i], obuf, 5 + (size_t)r);
    stream_consume(st, obuf + 5, (size_t)r);
}

enum { K_SIG, K_LISTEN, K_STREAM, K_STDIN, K_CLIENT };

static void loop(void) {
    struct pollfd pfd[5 + MAX_CLIENTS];
    int kind[5 + MAX_CLIENTS], ref[5 + MAX_CLIENTS];
    for (;;) {
        compact_clients();
        if (!started && had_clients && nclients == 0) {  /* its launcher died before starting? */
            if (!idle_since) idle_since = now_ms();
            if (now_ms() - idle_since >= ABANDON_MS) {
                unlink(p_attach);
                unlink(p_console);
                _exit(0);
            }
        } else {
            idle_since = 0;
        }
        int open_streams = (streams[0].fd >= 0) + (streams[1].fd >= 0), n = 0, timeout = -1;
        if (exited && (open_streams == 0 || now_ms() >= drain_deadline)) finish();
        if (exited) timeout = (int)(drain_deadline - now_ms());
        if (idle_since) timeout = (int)(idle_since + ABANDON_MS - now_ms()) + 1;
#define ADD(f, ev, k, r) (pfd[n] = (struct pollfd){(f), (ev), 0}, kind[n] = (k), ref[n++] = (r))
        ADD(sig_fd, POLLIN, K_SIG, 0);
        ADD(attach_listen, POLLIN, K_LISTEN, 0);
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0) ADD(streams[i].fd, POLLIN, K_STREAM, i);
        if (stdin_fd >= 0 && stdin_len > 0) ADD(stdin_fd, POLLOUT, K_STDIN, 0);
        for (int i = 0; i < nclients; i++)
            ADD(clients[i].fd, (short)((clients[i].rd_closed ? 0 : POLLIN) |
                                       (clients[i].out_len ? POLLOUT : 0)), K_CLIENT, i);
#undef ADD
        if (poll(pfd, (nfds_t)n, timeout < 0 && exited ? 0 : timeout) < 0) {
            if (errno != EINTR) usleep(10000);  /* should not happen; never spin */
            continue;
        }
        for (int j = 0; j < n; j++) {
            short re = pfd[j].revents;
            struct client *c = &clients[ref[j]];
            if (!re) continue;
            switch (kind[j]) {
            case K_SIG: reap(); break;
            case K_LISTEN: accept_clients(); break;
            case K_STREAM:
                if (streams[ref[j]].fd == pfd[j].fd) stream_input(&streams[ref[j]]);
                break;
            case K_STDIN:
                if (stdin_fd == pfd[j].fd) stdin_flush();
                break;
            case K_CLIENT:
                if (c->fd != pfd[j].fd) break;
                if (re & POLLOUT) client_flush(c);
                if (c->fd < 0) break;
                if ((re & POLLNVAL) || (c->rd_closed && (re & (POLLHUP | POLLERR))))
                    client_drop(c);
                else if (re & (POLLIN | POLLHUP | POLLERR))
                    client_input(c);
                break;
            }
        }
    }
}

/* ---- setup ------------------------------------------------------------------------- */

static void usage_fail(const char *what) {
    fail("usage: dockyard-shim --runtime PATH [--runtime-root DIR] --id ID --bundle DIR "
         "--state DIR --log PATH [--log-max-size N] [--log-max-files N] [--tty] [--stdin] "
         "[--hide-cgroup2] [--exec --process FILE] (%s)", what);
}

static void parse_args(int argc, char **argv) {
    static const struct { const char *name; const char **value; int *flag; } table[] = {
        {"--runtime", &opt.runtime, NULL}, {"--runtime-root", &opt.root, NULL},
        {"--id", &opt.id, NULL}, {"--bundle", &opt.bundle, NULL},
        {"--state", &opt.state, NULL}, {"--log", &opt.log, NULL},
        {"--process", &opt.process, NULL}, {"--tty", NULL, &opt.tty},
        {"--stdin", NULL, &opt.stdin}, {"--hide-cgroup2", NULL, &opt.hide_cgroup2},
        {"--exec", NULL, &opt.exec}, {"--log-max-size", NULL, NULL},
        {"--log-max-files", NULL, NULL},
    };
    for (int i = 1; i < argc; i++) {
        size_t t = 0, count = sizeof table / sizeof table[0];
        while (t < count && strcmp(argv[i], table[t].name)) t++;
        if (t == count) usage_fail(argv[i]);
        if (table[t].flag) { *table[t].flag = 1; continue; }
        if (i + 1 >= argc) usage_fail(argv[i]);
        if (table[t].value) { *table[t].value = argv[++i]; continue; }
        char *end;
        int files = !strcmp(argv[i], "--log-max-files");
        long long v = strtoll(argv[++i], &end, 10);
        if (*end || v < 0 || (files && (v < 1 || v > 1000))) usage_fail(argv[i - 1]);
        if (files) opt.log_max_files = (int)v;
        else opt.log_max_size = v;
    }
    if (!opt.runtime || !opt.id || !opt.state || (!opt.exec && !opt.bundle))
        usage_fail("--runtime, --id, --state and --bundle are required");
    if (opt.exec != (opt.process != NULL)) usage_fail("--exec goes with --process");
    if (opt.log && !opt.log[0]) opt.log = NULL;  /* --log "": no log file */
    char *paths[] = {p_pid, p_attach, p_console, p_exit, p_exit_tmp};
    const char *names[] = {"pid", "attach.sock", "console.sock", "exit", "exit.tmp"};
    for (int i = 0; i < 5; i++)
        if (snprintf(paths[i], PATH_MAX, "%s/%s", opt.state, names[i]) >= PATH_MAX)
            usage_fail("state path too long");
}

/* Runs in the forked child: becomes the shim, sets up, reports, serves until the end. */
static void shim_main(int report) {
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    umask(022);
    /* stdio -> /dev/null (the daemon reads our launcher's stdout to EOF); report -> fd 3 */
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(1);
    if (report != 3) dup2(report, 3);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    report_fd = 3;
    close_from(4);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (devnull < 0 || sig_fd < 0) fail("setup: %s", strerror(errno));

    struct stat st;
    if (stat(opt.state, &st) < 0) fail("state directory %s: %s", opt.state, strerror(errno));
    if (!S_ISDIR(st.st_mode)) fail("state directory %s: not a directory", opt.state);
    unlink(p_exit);
    unlink(p_exit_tmp);
    if (opt.log) {
        log_open(0);
        if (log_fd < 0) fail("open log %s: %s", opt.log, strerror(errno));
    }
    setup_stdio();
    attach_listen = listen_unix(p_attach);

    dprintf(report_fd, "ok %d %d\n", (int)child_pid, (int)getpid());
    close_fd(&report_fd);
    loop();
}

int main(int argc, char **argv) {
    int fd, rp[2];
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2) {}  /* fds 0-2 must exist */
    if (fd > 2) close(fd);
    parse_args(argc, argv);
    if (pipe2(rp, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(rp[0]);
        shim_main(rp[1]);
    }

    /* the launcher: relay the shim's one-line report */
    char line[4096];
    size_t len = 0;
    close(rp[1]);
    while (len < sizeof line - 2) {
        ssize_t n = read(rp[0], line + len, sizeof line - 2 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    line[len] = 0;
    if (len == 0) len = (size_t)snprintf(line, sizeof line, "error the shim exited during setup");
    if (line[len - 1] != '\n') line[len++] = '\n';
    line[len] = 0;
    fputs(line, stdout);
    if (strncmp(line, "ok ", 3) == 0) return 0;
    waitpid(pid, NULL, 0);
    return 1;
}
