/*
 * The native build of host_runner/wrapper.py: the same protocol, started in about a millisecond instead of ten.
 *
 *   wrapper STATUS_FILE GO_FD COMMAND...
 *
 * Started by the runner as the leader of a new session, with stdin, stdout and stderr already pointing at the
 * run's files.
 *
 * 1. Wait for the runner to write "g" on the pipe GO_FD (it does so only after it persisted the pid). Anything
 *    else (the runner died: EOF) and the wrapper exits 125 without running anything.
 * 2. Create "launched" beside STATUS_FILE, start COMMAND (PATH lookup) in the same process group, wait for it.
 * 3. Write {"exit_code", "signal", "error", "finished_at"} to STATUS_FILE atomically (tmp + rename).
 *
 * SIGTERM, SIGINT and SIGHUP are caught and ignored, so the wrapper outlives a group signal and records the
 * outcome; the command gets default handlers back (posix_spawn resets caught signals). Exit status: the
 * command's, 128 + N when signal N ended it, 127 when it could not start.
 *
 * Keep this file and wrapper.py in step: tests/test_wrapper.py runs both against the same cases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define NOT_STARTED 125
#define CANNOT_START 127

extern char **environ;

static void ignore(int signum) { (void)signum; }

/* Appends `text` to `out` as the body of a JSON string; control, quote, backslash and non-ASCII bytes are
 * escaped (\u00XX), so the file is valid ASCII JSON whatever the command name was. */
static void json_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\')
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void record(const char *status_path, int exit_code, int signum, const char *error) {
    char temporary[4096], stamp[32];
    time_t now = time(NULL);
    struct tm utc;
    if (snprintf(temporary, sizeof temporary, "%s.tmp", status_path) >= (int)sizeof temporary)
        return;
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &utc));
    FILE *out = fopen(temporary, "w");
    if (out == NULL)
        return;
    fprintf(out, "{\"exit_code\": %d, \"signal\": ", exit_code);
    if (signum)
        fprintf(out, "%d", signum);
    else
        fputs("null", out);
    fputs(", \"error\": ", out);
    if (error)
        json_string(out, error);
    else
        fputs("null", out);
    fprintf(out, ", \"finished_at\": \"%s\"}", stamp);
    if (fclose(out) == 0)
        rename(temporary, status_path);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fputs("usage: wrapper STATUS_FILE GO_FD COMMAND...\n", stderr);
        return 2;
    }
    const char *status_path = argv[1];
    int go_fd = atoi(argv[2]);
    char **command = argv + 3;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ignore;  /* a handler, not SIG_IGN: the command must not inherit "ignored" */
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    char go = 0;
    ssize_t got;
    do
        got = read(go_fd, &go, 1);
    while (got < 0 && errno == EINTR);
    close(go_fd);
    if (got != 1 || go != 'g')
        return NOT_STARTED;

    char launched[4096];
    const char *slash = strrchr(status_path, '/');
    int directory_length = slash ? (int)(slash - status_path) : 1;
    const char *directory = slash ? status_path : ".";
    if (snprintf(launched, sizeof launched, "%.*s/launched", directory_length, directory) < (int)sizeof launched) {
        int fd = open(launched, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd >= 0)
            close(fd);
    }

    pid_t pid;
    int failure = posix_spawnp(&pid, command[0], NULL, NULL, command, environ);
    if (failure != 0) {
        /* The same words as wrapper.py (which quotes with Python's repr). */
        char message[4096];
        snprintf(message, sizeof message, "cannot start '%s': %s", command[0], strerror(failure));
        fprintf(stderr, "host-runner: %s\n", message);
        fflush(stderr);
        record(status_path, CANNOT_START, 0, message);
        return CANNOT_START;
    }

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            record(status_path, CANNOT_START, 0, "lost track of the command (waitpid failed)");
            return CANNOT_START;
        }
    }
    if (WIFSIGNALED(status)) {
        int signum = WTERMSIG(status);
        record(status_path, 128 + signum, signum, NULL);
        return 128 + signum;
    }
    record(status_path, WEXITSTATUS(status), 0, NULL);
    return WEXITSTATUS(status);
}
