/*
 * harness.c - real servers and real processes for integration tests.
 *
 * Nothing is mocked: nats-server is the Debian binary, started per test on
 * a port the kernel picked, and jetfleet is the binary under test
 * (JF_BIN, set by meson). Each server lives in its own mkdtemp directory,
 * removed when the test ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include <jetfleet/v1/ledger.pb-c.h>

#include "harness.h"

extern char **environ;

void jf_h_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t          len = sizeof(a);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    int                port;

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static pid_t spawn(char *const argv[], char *const envp[], const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    pid_t                      pid;
    int                        rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot start %s: %s", argv[0], strerror(rc));
    return pid;
}

/* Start nats-server on s->port with its store in s->dir; true when it
 * accepts connections. */
static bool server_spawn(jf_h_server_t *s)
{
    char  port[16], store[300], out[300], err[300];
    char *argv[] = { "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", store,
                     "--server_name", "jf-test", NULL };

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(store, sizeof(store), "%s/js", s->dir);
    snprintf(out, sizeof(out), "%s/server.out", s->dir);
    snprintf(err, sizeof(err), "%s/server.log", s->dir);
    snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
    s->pid = spawn(argv, environ, out, err);
    for (int i = 0; i < 400; i++) {
        natsConnection *nc = NULL;
        int             status;
        if (natsConnection_ConnectTo(&nc, s->url) == NATS_OK) {
            natsConnection_Destroy(nc);
            return true;
        }
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return false;   /* e.g. the port was taken between probe and bind */
        }
        jf_h_sleep_ms(25);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return false;
}

void jf_h_server_start(jf_h_server_t *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/jf-it-XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port();
        if (server_spawn(s))
            return;
    }
    cr_assert_fail("nats-server did not start; see %s/server.log", s->dir);
}

void jf_h_server_restart(jf_h_server_t *s, int down_ms)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    jf_h_sleep_ms(down_ms);
    cr_assert(server_spawn(s), "nats-server did not restart on port %d", s->port);
}

/* Every worker started in this test, so that teardown can hold each of
 * their log lines to the promise of one JSON object per line. */
static char worker_logs[64][300];
static int  nworker_logs;

static void check_json_logs(void)
{
    for (int i = 0; i < nworker_logs; i++) {
        char *text = jf_h_slurp(worker_logs[i]);
        char *line = text, *nl;
        int   n = 1;

        /* complete lines only: a worker killed mid-write may leave a tail */
        for (; (nl = strchr(line, '\n')) != NULL; line = nl + 1, n++) {
            json_error_t e;
            json_t      *o;
            *nl = '\0';
            o = json_loads(line, 0, &e);
            cr_assert(o != NULL && json_is_object(o) && json_is_string(json_object_get(o, "ts")) &&
                      json_is_string(json_object_get(o, "level")) &&
                      json_is_string(json_object_get(o, "msg")),
                      "%s:%d is not a JSON log line: '%.300s'", worker_logs[i], n, line);
            json_decref(o);
        }
        free(text);
    }
    nworker_logs = 0;
}

/* Workers started by jf_h_worker_start(): a test that fails before it
 * stops one must not leave it running (it would reconnect forever, and
 * join whatever server next listens on the port). */
static pid_t worker_pids[64];
static int   nworker_pids;

static void reap_workers(void)
{
    for (int i = 0; i < nworker_pids; i++)
        if (waitpid(worker_pids[i], NULL, WNOHANG) == 0) {   /* still ours and alive */
            kill(worker_pids[i], SIGKILL);
            waitpid(worker_pids[i], NULL, 0);
        }
    nworker_pids = 0;
}

/* A sanitizer report in a child (a worker, a CLI run) goes to its stderr,
 * a file in the server's directory, and under -Dtsan=true the child then
 * exits 66 (TSAN_OPTIONS, scripts/test). A test may not look at that exit
 * status (a worker it SIGKILLs, one that fails an earlier wait), so every
 * child's output is searched here too: a report fails the test and is
 * printed. */
static const char *const sanitizer_markers[] = {
    "WARNING: ThreadSanitizer:", "ERROR: ThreadSanitizer:", "FATAL: ThreadSanitizer:", NULL,
};

static void check_sanitizer_reports(const jf_h_server_t *s)
{
    DIR           *d = opendir(s->dir);
    struct dirent *de;
    char           path[600], found[600] = "";

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char       *text, *at = NULL;

        snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        text = jf_h_slurp(path);
        for (const char *const *m = sanitizer_markers; *m && at == NULL; m++)
            at = strstr(text, *m);
        if (at != NULL) {
            fprintf(stderr, "---- sanitizer report in %s ----\n%.20000s\n----\n", path, at);
            if (found[0] == '\0')
                snprintf(found, sizeof(found), "%s", path);
        }
        free(text);
    }
    closedir(d);
    cr_assert(found[0] == '\0', "sanitizer report in %s (printed above)", found);
}

void jf_h_server_stop(jf_h_server_t *s)
{
    char cmd[320];

    reap_workers();
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    check_sanitizer_reports(s);
    check_json_logs();
    if (s->dir[0] != '\0' && getenv("JF_TEST_KEEP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
}

static char **child_env(const jf_h_server_t *s, const char *const *extra)
{
    static char url[96];
    size_t      n = 0, m = 0;
    char      **env;

    for (char **e = environ; *e; e++)
        n++;
    for (const char *const *e = extra; e && *e; e++)
        m++;
    env = calloc(n + m + 4, sizeof(*env));
    cr_assert_not_null(env);
    snprintf(url, sizeof(url), "JF_NATS_URL=%s", s->url);
    n = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "JF_", 3) != 0)   /* a developer's JF_* must not leak in */
            env[n++] = *e;
    {
        bool has_url = false;
        for (const char *const *e = extra; e && *e; e++)
            has_url = has_url || strncmp(*e, "JF_NATS_URL=", 12) == 0;
        if (!has_url)
            env[n++] = url;
    }
    env[n++] = "JF_LOG_FORMAT=json";
    for (const char *const *e = extra; e && *e; e++)
        env[n++] = (char *)*e;
    return env;
}

static const char *jf_bin(void)
{
    const char *bin = getenv("JF_BIN");
    cr_assert_not_null(bin, "JF_BIN is not set (run through meson test)");
    return bin;
}

static void proc_paths(const jf_h_server_t *s, const char *tag, jf_h_proc_t *p)
{
    snprintf(p->out_path, sizeof(p->out_path), "%s/%s.out", s->dir, tag);
    snprintf(p->err_path, sizeof(p->err_path), "%s/%s.log", s->dir, tag);
}

int jf_h_run(const jf_h_server_t *s, const char *tag, const char *const *env,
             const char *const *args, jf_h_proc_t *out)
{
    jf_h_proc_t p;
    char       *argv[32];
    char      **envp = child_env(s, env);
    int         n = 0, status;

    argv[n++] = (char *)jf_bin();
    for (const char *const *a = args; *a && n < 31; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    proc_paths(s, tag, &p);
    p.pid = spawn(argv, envp, p.out_path, p.err_path);
    free(envp);
    cr_assert_eq(waitpid(p.pid, &status, 0), p.pid);
    if (out != NULL)
        *out = p;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void jf_h_worker_start(const jf_h_server_t *s, const char *tag, const char *const *env,
                       jf_h_proc_t *out)
{
    char  *argv[] = { (char *)jf_bin(), "worker", NULL };
    char **envp = child_env(s, env);

    proc_paths(s, tag, out);
    out->pid = spawn(argv, envp, out->out_path, out->err_path);
    free(envp);
    if (nworker_pids < 64)
        worker_pids[nworker_pids++] = out->pid;
    if (nworker_logs < 64) {
        bool seen = false;
        for (int i = 0; i < nworker_logs && !seen; i++)
            seen = strcmp(worker_logs[i], out->err_path) == 0;
        if (!seen)
            snprintf(worker_logs[nworker_logs++], sizeof(worker_logs[0]), "%s", out->err_path);
    }
}

int jf_h_proc_stop(jf_h_proc_t *p, int sig, int timeout_ms)
{
    int status;

    if (p->pid <= 0)
        return -1;
    if (sig != 0)
        kill(p->pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        jf_h_sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return -1;
}

char *jf_h_slurp(const char *path)
{
    FILE  *f = fopen(path, "rb");
    char  *buf;
    long   n;

    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

int jf_h_count_lines(const char *path, const char *const *needles)
{
    char *text = jf_h_slurp(path);
    char *save = NULL;
    int   count = 0;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool all = true;
        for (const char *const *n = needles; *n && all; n++)
            all = strstr(line, *n) != NULL;
        if (all)
            count++;
    }
    free(text);
    return count;
}

int jf_h_wait_lines(const char *path, const char *const *needles, int want, int timeout_ms)
{
    int n = 0;

    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        n = jf_h_count_lines(path, needles);
        if (n >= want)
            return n;
        jf_h_sleep_ms(20);
    }
    return n;
}

int jf_h_job_lines(const char *path, const char *job_id, const char *msg, int want,
                   int timeout_ms)
{
    char idf[200], msgf[100];

    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", job_id);
    snprintf(msgf, sizeof(msgf), "\"msg\":\"%s\"", msg);
    const char *const needles[] = { idf, msgf, NULL };
    return timeout_ms > 0 ? jf_h_wait_lines(path, needles, want, timeout_ms)
                          : jf_h_count_lines(path, needles);
}

natsConnection *jf_h_connect(const jf_h_server_t *s)
{
    natsConnection *nc = NULL;

    cr_assert_eq(natsConnection_ConnectTo(&nc, s->url), NATS_OK);
    return nc;
}

bool jf_h_publish(natsConnection *nc, const char *subject, const char *data, int len,
                  const char *id, const char *const *headers)
{
    jsCtx       *js = NULL;
    natsMsg     *msg = NULL;
    jsPubAck    *pa = NULL;
    jsPubOptions po;
    jsErrCode    jerr = 0;
    natsStatus   s;
    bool         stored;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(natsMsg_Create(&msg, subject, NULL, data, len), NATS_OK);
    for (const char *const *h = headers; h && h[0] && h[1]; h += 2)
        cr_assert_eq(natsMsgHeader_Add(msg, h[0], h[1]), NATS_OK);
    jsPubOptions_Init(&po);
    po.MsgId = id;
    s = js_PublishMsg(&pa, js, msg, &po, &jerr);
    cr_assert_eq(s, NATS_OK, "publish to %s: %s (%d)", subject, natsStatus_GetText(s), jerr);
    stored = !pa->Duplicate;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(msg);
    jsCtx_Destroy(js);
    return stored;
}

uint64_t jf_h_wait_stream_msgs(natsConnection *nc, const char *stream, uint64_t want,
                               int timeout_ms)
{
    uint64_t n = jf_h_stream_msgs(nc, stream);

    for (int waited = 0; n != want && waited < timeout_ms; waited += 20) {
        jf_h_sleep_ms(20);
        n = jf_h_stream_msgs(nc, stream);
    }
    return n;
}

uint64_t jf_h_stream_msgs(natsConnection *nc, const char *stream)
{
    jsCtx        *js = NULL;
    jsStreamInfo *si = NULL;
    uint64_t      n;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_OK);
    n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return n;
}

void jf_h_consumer_state(natsConnection *nc, const char *stream, const char *consumer,
                         uint64_t *num_pending, int64_t *num_ack_pending,
                         int64_t *num_redelivered)
{
    jsCtx          *js = NULL;
    jsConsumerInfo *ci = NULL;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetConsumerInfo(&ci, js, stream, consumer, NULL, NULL), NATS_OK);
    if (num_pending)
        *num_pending = ci->NumPending;
    if (num_ack_pending)
        *num_ack_pending = ci->NumAckPending;
    if (num_redelivered)
        *num_redelivered = ci->NumRedelivered;
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
}

bool jf_h_ledger(natsConnection *nc, const char *key, int *state, unsigned *attempts)
{
    jsCtx                   *js = NULL;
    kvStore                 *kv = NULL;
    kvEntry                 *e = NULL;
    Jetfleet__V1__JobRecord *rec;
    bool                     found = false;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_KeyValue(&kv, js, "JF_LEDGER"), NATS_OK);
    if (kvStore_Get(&e, kv, key) == NATS_OK) {
        rec = jetfleet__v1__job_record__unpack(NULL, (size_t)kvEntry_ValueLen(e),
                                               kvEntry_Value(e));
        cr_assert_not_null(rec, "ledger value of %s is not a JobRecord", key);
        *state = (int)rec->state;
        *attempts = rec->attempts;
        jetfleet__v1__job_record__free_unpacked(rec, NULL);
        kvEntry_Destroy(e);
        found = true;
    }
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return found;
}

natsMsg *jf_h_dlq_find(natsConnection *nc, const char *job_id, uint64_t original_seq)
{
    jsCtx        *js = NULL;
    jsStreamInfo *si = NULL;
    natsMsg      *found = NULL;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&si, js, "DLQ", NULL, NULL), NATS_OK);
    for (uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq && found == NULL; seq++) {
        natsMsg    *m = NULL;
        const char *v = NULL;
        if (js_GetMsg(&m, js, "DLQ", seq, NULL, NULL) != NATS_OK)
            continue;
        if (job_id != NULL && natsMsgHeader_Get(m, "Jf-Job-Id", &v) == NATS_OK &&
            strcmp(v, job_id) == 0)
            found = m;
        else if (job_id == NULL && natsMsgHeader_Get(m, "Jf-Original-Seq", &v) == NATS_OK &&
                 strtoull(v, NULL, 10) == original_seq)
            found = m;
        else
            natsMsg_Destroy(m);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return found;
}

int64_t jf_h_line_ts(const char *line)
{
    const char *p = strstr(line, "\"ts\":\"");
    struct tm   tm;
    int         ms = 0;

    if (p == NULL)
        return -1;
    memset(&tm, 0, sizeof(tm));
    p = strptime(p + 6, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL || *p != '.')
        return -1;
    ms = atoi(p + 1);
    return (int64_t)timegm(&tm) * 1000 + ms;
}

char **jf_h_grep(const char *path, const char *const *needles, int *count)
{
    char  *text = jf_h_slurp(path);
    char  *save = NULL;
    char **out = NULL;
    int    n = 0;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool all = true;
        for (const char *const *nd = needles; *nd && all; nd++)
            all = strstr(line, *nd) != NULL;
        if (!all)
            continue;
        out = realloc(out, sizeof(*out) * (size_t)(n + 1));
        cr_assert_not_null(out);
        out[n++] = strdup(line);
    }
    free(text);
    *count = n;
    return out;
}

void jf_h_grep_free(char **lines, int count)
{
    for (int i = 0; i < count; i++)
        free(lines[i]);
    free(lines);
}

int jf_h_free_port(void)
{
    return free_port();
}

void jf_h_provision(const jf_h_server_t *s, const char *const *env)
{
    jf_h_proc_t p;
    const char *const args[] = { "provision", NULL };
    int rc = jf_h_run(s, "provision", env, args, &p);

    cr_assert_eq(rc, 0, "provision failed (%d): %s", rc, jf_h_slurp(p.err_path));
}

void jf_h_wait_started(const jf_h_proc_t *w)
{
    const char *const started[] = { "\"msg\":\"worker started\"", NULL };

    cr_assert_eq(jf_h_wait_lines(w->err_path, started, 1, 10000), 1,
                 "worker did not start: %s", jf_h_slurp(w->err_path));
}

/* ---- HTTP ------------------------------------------------------------------------------ */

typedef struct http_body {
    char  *p;
    size_t len;
} http_body_t;

static size_t on_http_data(char *data, size_t size, size_t n, void *arg)
{
    http_body_t *b = arg;
    char        *p = realloc(b->p, b->len + size * n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, size * n);
    b->p = p;
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

long jf_h_http_get(const char *url, char **body)
{
    CURL       *c = curl_easy_init();
    http_body_t b = { NULL, 0 };
    long        status = 0;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_http_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    *body = b.p != NULL ? b.p : strdup("");
    return status;
}

double jf_h_metric(const char *text, const char *series)
{
    const char *p = text;
    size_t      n = strlen(series);

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
        p += n;
    }
    return -1;
}
