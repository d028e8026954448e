/*
 * The native build of host_runner/run/wrapper.py: the same protocol, started in about a millisecond instead of ten.
 *
 *   wrapper STATUS_FILE GO_FD GRACE COMMAND...
 *
 * Started by the runner as the leader of a new session, with stdin, stdout and stderr already pointing at the
 * run's files.
 *
 * 1. Wait for the runner to write "g" on the pipe GO_FD (it does so only after it persisted the pid). Anything
 *    else (the runner died: EOF) and the wrapper exits 125 without running anything.
 * 2. Create "launched" beside STATUS_FILE, start COMMAND (PATH lookup) in the same process group, wait for it.
 * 3. Write {"exit_code", "signal", "error", "finished_at"} to STATUS_FILE atomically (tmp + rename); if that
 *    fails (a full disk), the exit status below still carries the command's.
 * 4. As a child subreaper, daemons the command forked that left the group (setsid) are re-parented here: once
 *    the command ended, TERM them, KILL those left after GRACE seconds, reap them, and only then exit.
 *
 * If "launched" cannot be created, the command does not start (fail closed; the status file says why).
 *
 * SIGTERM, SIGINT and SIGHUP are caught and noted, so the wrapper outlives a group signal and records the
 * outcome; one noted before the command started means it never starts (exit 125); the command gets default handlers back (posix_spawn resets caught signals). Exit status: the
 * command's, 128 + N when signal N ended it, 127 when it could not start.
 *
 * Keep this file and wrapper.py in step: tests/run/test_wrapper.py runs both against the same cases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define NOT_STARTED 125
#define CANNOT_START 127

extern char **environ;

static volatile sig_atomic_t stopped = 0;

/* Noted, not obeyed, once the command runs; before that, a stop means it never starts. */
static void note(int signum) { stopped = signum; }

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
    /* 0600: the run directory's files are the runner user's alone, whatever umask the command gets */
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (out == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
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

struct proc {
    pid_t pid, ppid, pgrp;
    char state;
};

/* Every process in /proc (pid, parent, group, state); the array is malloc'ed, the count returned. */
static int scan(struct proc **out) {
    struct proc *list = NULL;
    int count = 0, capacity = 0;
    DIR *dir = opendir("/proc");
    if (dir != NULL) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
                continue;
            char path[300], text[1024];
            snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t length = read(fd, text, sizeof text - 1);
            close(fd);
            if (length <= 0)
                continue;
            text[length] = 0;
            char *name_end = strrchr(text, ')');  /* the command name may hold spaces and parentheses */
            char state;
            int ppid, pgrp;
            if (name_end == NULL || sscanf(name_end + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
                continue;
            if (count == capacity) {
                capacity = capacity ? capacity * 2 : 256;
                struct proc *grown = realloc(list, capacity * sizeof *list);
                if (grown == NULL)
                    break;
                list = grown;
            }
            list[count++] = (struct proc){(pid_t)atoi(entry->d_name), ppid, pgrp, state};
        }
        closedir(dir);
    }
    *out = list;
    return count;
}

/* Live descendants of this process outside its process group (malloc'ed into *found); returns the count. */
static int escaped(pid_t **found) {
    pid_t self = getpid(), group = getpgrp();
    struct proc *list = NULL;
    int total = scan(&list), head = 0, tail = 0, count = 0;
    pid_t *queue = malloc((total + 1) * sizeof *queue);
    pid_t *result = malloc((total + 1) * sizeof *result);
    if (queue == NULL || result == NULL) {
        free(queue);
        free(result);
        free(list);
        *found = NULL;
        return 0;
    }
    queue[tail++] = self;
    while (head < tail) {
        pid_t parent = queue[head++];
        for (int i = 0; i < total; i++) {
            if (list[i].ppid != parent || list[i].state == 'Z' || tail > total)
                continue;
            queue[tail++] = list[i].pid;
            if (list[i].pgrp != group)
                result[count++] = list[i].pid;
        }
    }
    free(queue);
    free(list);
    *found = result;
    return count;
}

static void reap(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void pause_ms(long ms) {
    struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}

static double monotonic(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

static void signal_all(const pid_t *pids, int count, int signum) {
    for (int i = 0; i < count; i++)
        kill(pids[i], signum);
}

/* TERM the descendants that left the group, KILL what is left after `grace` seconds, reap them. */
static void stop_escaped(double grace) {
    reap();
    if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
        return;  /* no child at all, so no descendant either (orphans would be ours): no /proc scan */
    pid_t *pids = NULL;
    int count = escaped(&pids);
    if (count > 0) {
        signal_all(pids, count, SIGTERM);
        double deadline = monotonic() + grace;
        while (count > 0 && monotonic() < deadline) {
            free(pids);
            pause_ms(50);
            reap();
            count = escaped(&pids);
        }
        for (int round = 0; count > 0 && round < 100; round++) {  /* one may fork while being killed */
            signal_all(pids, count, SIGKILL);
            free(pids);
            pause_ms(20);
            reap();
            count = escaped(&pids);
        }
    }
    free(pids);
    reap();
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fputs("usage: wrapper STATUS_FILE GO_FD GRACE COMMAND...\n", stderr);
        return 2;
    }
    const char *status_path = argv[1];
    int go_fd = atoi(argv[2]);
    double grace = atof(argv[3]);
    char **command = argv + 4;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = note;  /* a handler, not SIG_IGN: the command must not inherit "ignored" */
    /* no SA_RESTART: a stop interrupts the read below, and the wrapper exits without running anything */
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    char go = 0;
    ssize_t got;
    do
        got = read(go_fd, &go, 1);
    while (got < 0 && errno == EINTR && !stopped);
    close(go_fd);
    if (got != 1 || go != 'g' || stopped)
        return NOT_STARTED;

    char launched[4096];
    const char *slash = strrchr(status_path, '/');
    int directory_length = slash ? (int)(slash - status_path) : 1;
    const char *directory = slash ? status_path : ".";
    int fd = -1;
    if (snprintf(launched, sizeof launched, "%.*s/launched", directory_length, directory) < (int)sizeof launched)
        fd = open(launched, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* Fail closed: without it a restarted runner could not tell the command ran (it would run it twice). */
        char message[256];
        snprintf(message, sizeof message, "not started: cannot create its launched file: %s", strerror(errno));
        record(status_path, NOT_STARTED, 0, message);
        return NOT_STARTED;
    }
    close(fd);

    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  /* orphaned descendants become ours (step 4) */
    if (stopped)
        return NOT_STARTED;

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
    int code;
    if (WIFSIGNALED(status)) {
        int signum = WTERMSIG(status);
        code = 128 + signum;
        record(status_path, code, signum, NULL);
    } else {
        code = WEXITSTATUS(status);
        record(status_path, code, 0, NULL);
    }
    stop_escaped(grace);
    return code;
}
