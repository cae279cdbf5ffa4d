/*
 * test_decide.c - the worker's decisions, row by row.
 *
 * Two tables. The first gives facts and the way out they must lead to, one
 * row per row of "Every way out" in docs/workers/job-flow.md (and the
 * corners around them: replays, free deliveries, overruns, shutdown). The
 * second is job-flow.md's table itself, read from the file: every way's
 * acknowledgement, dead letter, ledger write, log line, outcome and events
 * in the code must be what the document says.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "app/worker/decide.h"
#include "core/telemetry.h"   /* jf_event_kind_name: the names events carry */

#define ST(s) JETFLEET__V1__JOB_STATE__JOB_STATE_##s
#define NOW   1800000000000LL

/* ---- admission ------------------------------------------------------------------------ */

typedef struct admit_row {
    const char      *what;
    jf_admit_facts_t f;
    jf_way_t         way;        /* JF_WAY_MAX_: it runs */
    uint32_t         attempt;
    uint32_t         delay_ms;
} admit_row_t;

static admit_row_t admit_rows[] = {
    { "first delivery, no record: attempt 1",
      { .delivered = 1, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 1, 0 },
    { "a retry after a recorded failure: the next attempt",
      { .have_record = true, .state = ST(FAILED), .attempts = 1, .same_message = true,
        .delivered = 2, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 2, 0 },
    { "a crashed run left no record: its delivery still counts",
      { .delivered = 2, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 2, 0 },
    { "free deliveries (not due, returned) are not attempts",
      { .have_record = true, .state = ST(WAITING), .free = 3, .same_message = true,
        .delivered = 4, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 1, 0 },
    { "free deliveries of another stored message do not count here",
      { .have_record = true, .state = ST(WAITING), .free = 3, .same_message = false,
        .delivered = 2, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 2, 0 },
    { "never fewer than one more than the record's attempts",
      { .have_record = true, .state = ST(FAILED), .attempts = 5, .same_message = true,
        .delivered = 2, .max_attempts = 5, .now_ms = NOW }, JF_WAY_UNANSWERED, 6, 0 },
    { "succeeded: duplicate, with the record's attempts",
      { .have_record = true, .state = ST(SUCCEEDED), .attempts = 2, .same_message = true,
        .delivered = 3, .max_attempts = 5, .now_ms = NOW }, JF_WAY_DUPLICATE, 2, 0 },
    { "succeeded, published again after the window (another message): duplicate",
      { .have_record = true, .state = ST(SUCCEEDED), .attempts = 1, .same_message = false,
        .delivered = 1, .max_attempts = 5, .now_ms = NOW }, JF_WAY_DUPLICATE, 1, 0 },
    { "dead, the same message: duplicate",
      { .have_record = true, .state = ST(DEAD), .attempts = 1, .same_message = true,
        .delivered = 2, .max_attempts = 5, .now_ms = NOW }, JF_WAY_DUPLICATE, 1, 0 },
    { "dead, published again without Jf-Job-Id: duplicate",
      { .have_record = true, .state = ST(DEAD), .attempts = 1, .same_message = false,
        .delivered = 1, .max_attempts = 5, .now_ms = NOW }, JF_WAY_DUPLICATE, 1, 0 },
    { "dead, but a replay's copy that overtook the reset: it runs afresh",
      { .have_record = true, .state = ST(DEAD), .attempts = 5, .same_message = false,
        .replay = true, .delivered = 1, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 1, 0 },
    { "replayed record (attempts 0): attempts start again",
      { .have_record = true, .state = ST(REPLAYED), .attempts = 0, .same_message = false,
        .replay = true, .delivered = 1, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_, 1, 0 },
    { "deliveries past max_attempts: no attempt left",
      { .delivered = 6, .max_attempts = 5, .now_ms = NOW }, JF_WAY_UNANSWERED, 6, 0 },
    { "a poison pill of max_attempts 1 crashed once: no attempt left",
      { .delivered = 2, .max_attempts = 1, .now_ms = NOW }, JF_WAY_UNANSWERED, 2, 0 },
    { "not due yet: NAK with the time left, not an attempt",
      { .delivered = 1, .max_attempts = 5, .not_before_ms = NOW + 1500, .now_ms = NOW },
      JF_WAY_NOT_DUE, 0, 1500 },
    { "not due for a year: back once a day",
      { .delivered = 1, .max_attempts = 5, .not_before_ms = NOW + 365LL * 86400000,
        .now_ms = NOW }, JF_WAY_NOT_DUE, 0, 86400000 },
    { "due: runs",
      { .delivered = 3, .free = 2, .have_record = true, .state = ST(WAITING),
        .same_message = true, .max_attempts = 5, .not_before_ms = NOW - 1, .now_ms = NOW },
      JF_WAY_MAX_, 1, 0 },
    { "dedupe-only mode: the delivery count, no record",
      { .ledger_off = true, .delivered = 3, .max_attempts = 5, .now_ms = NOW }, JF_WAY_MAX_,
      3, 0 },
    { "dedupe-only mode: past max_attempts",
      { .ledger_off = true, .delivered = 6, .max_attempts = 5, .now_ms = NOW },
      JF_WAY_UNANSWERED, 6, 0 },
};

ParameterizedTestParameters(decide, admit)
{
    return cr_make_param_array(admit_row_t, admit_rows, sizeof(admit_rows) / sizeof(admit_rows[0]));
}

ParameterizedTest(admit_row_t *row, decide, admit)
{
    jf_admission_t a = jf_decide_admit(&row->f);

    cr_assert_eq(a.way, row->way, "%s: way %d, expected %d", row->what, a.way, row->way);
    cr_assert_eq(a.attempt, row->attempt, "%s: attempt %u, expected %u", row->what, a.attempt,
                 row->attempt);
    cr_assert_eq(a.delay_ms, row->delay_ms, "%s: delay %u", row->what, a.delay_ms);
}

/* ---- the end of a run ------------------------------------------------------------------ */

typedef struct finish_row {
    const char       *what;
    jf_finish_facts_t f;
    jf_way_t          way;
} finish_row_t;

static finish_row_t finish_rows[] = {
    { "jf_ok", { JF_JOB_OK, 1, 5, false, false }, JF_WAY_SUCCEEDED },
    { "jf_ok after the deadline is still a success", { JF_JOB_OK, 1, 5, true, false },
      JF_WAY_SUCCEEDED },
    { "jf_ok at shutdown is still a success", { JF_JOB_OK, 1, 5, false, true },
      JF_WAY_SUCCEEDED },
    { "jf_retry with attempts left", { JF_JOB_RETRY, 1, 5, false, false }, JF_WAY_RETRY },
    { "jf_retry on the last attempt", { JF_JOB_RETRY, 5, 5, false, false }, JF_WAY_EXHAUSTED },
    { "jf_retry after the shutdown grace", { JF_JOB_RETRY, 2, 5, false, true },
      JF_WAY_INTERRUPTED },
    { "jf_retry on the last attempt after the grace", { JF_JOB_RETRY, 5, 5, false, true },
      JF_WAY_INTERRUPTED },
    { "jf_fail", { JF_JOB_FAIL, 1, 5, false, false }, JF_WAY_FAILED },
    { "jf_fail at shutdown is still terminal", { JF_JOB_FAIL, 1, 5, false, true },
      JF_WAY_FAILED },
    { "jf_fail after the deadline: an overrun is retried", { JF_JOB_FAIL, 1, 5, true, false },
      JF_WAY_RETRY },
    { "an overrun on the last attempt", { JF_JOB_FAIL, 5, 5, true, false }, JF_WAY_EXHAUSTED },
};

ParameterizedTestParameters(decide, finish)
{
    return cr_make_param_array(finish_row_t, finish_rows,
                               sizeof(finish_rows) / sizeof(finish_rows[0]));
}

ParameterizedTest(finish_row_t *row, decide, finish)
{
    cr_assert_eq(jf_decide_finish(&row->f), row->way, "%s", row->what);
}

Test(decide, a_conflict_with_an_ended_run_is_overtaken)
{
    cr_assert_eq(jf_decide_conflict(JF_WAY_SUCCEEDED, true, ST(SUCCEEDED)), JF_WAY_OVERTAKEN);
    cr_assert_eq(jf_decide_conflict(JF_WAY_RETRY, true, ST(DEAD)), JF_WAY_OVERTAKEN);
    cr_assert_eq(jf_decide_conflict(JF_WAY_NOT_DUE, true, ST(SUCCEEDED)), JF_WAY_OVERTAKEN);
    /* Another run's failure or a free delivery: ours is written over it. */
    cr_assert_eq(jf_decide_conflict(JF_WAY_SUCCEEDED, true, ST(FAILED)), JF_WAY_SUCCEEDED);
    cr_assert_eq(jf_decide_conflict(JF_WAY_FAILED, true, ST(WAITING)), JF_WAY_FAILED);
    cr_assert_eq(jf_decide_conflict(JF_WAY_SUCCEEDED, false, ST(UNSPECIFIED)),
                 JF_WAY_SUCCEEDED);
}

/* ---- the document's table is the code's ------------------------------------------------ */

/* Copy the cell with backticks removed and spaces trimmed. */
static void cell(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = 0;

    while (len > 0 && isspace((unsigned char)*src))
        src++, len--;
    while (len > 0 && isspace((unsigned char)src[len - 1]))
        len--;
    for (size_t i = 0; i < len && n + 1 < size; i++)
        if (src[i] != '`')
            dst[n++] = src[i];
    dst[n] = '\0';
}

static const char *ack_text(jf_ack_t a)
{
    switch (a) {
    case JF_ACK_NONE:      return "none";
    case JF_ACK_ACK:       return "+ACK";
    case JF_ACK_NAK:       return "-NAK";
    case JF_ACK_NAK_DELAY: return "-NAK with";
    }
    return "?";
}

static const char *record_text(jf_rec_t r)
{
    switch (r) {
    case JF_REC_NONE:      return "none";
    case JF_REC_FREE:      return "one more free delivery";
    case JF_REC_SUCCEEDED: return "succeeded";
    case JF_REC_FAILED:    return "failed";
    case JF_REC_DEAD:      return "dead";
    }
    return "?";
}

static const char *level_text(jf_log_level_t l)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };
    return names[l];
}

Test(decide, job_flow_md_lists_every_way_as_the_code_takes_it)
{
    FILE   *f = fopen(JF_SOURCE_ROOT "/docs/workers/job-flow.md", "r");
    char    line[2048];
    bool    in_table = false, seen[JF_WAY_MAX_] = { false };
    int     rows = 0;

    cr_assert_not_null(f, "docs/workers/job-flow.md");
    while (fgets(line, sizeof(line), f) != NULL) {
        char        c[8][400], want[400];
        const char *p = line;
        int         n = 0;
        const jf_way_info_t *info = NULL;

        if (strncmp(line, "## Every way out", 16) == 0) {
            in_table = true;
            continue;
        }
        if (!in_table)
            continue;
        if (strncmp(line, "## ", 3) == 0)
            break;
        if (strncmp(line, "| `", 3) != 0)
            continue;
        /* | way | when | ack | dead letter | ledger | log (level) | outcome | events | */
        p++;
        while (n < 8) {
            const char *bar = strchr(p, '|');
            if (bar == NULL)
                break;
            cell(c[n++], sizeof(c[0]), p, (size_t)(bar - p));
            p = bar + 1;
        }
        cr_assert_eq(n, 8, "a row of 8 cells: %s", line);
        for (int w = 0; w < JF_WAY_MAX_; w++)
            if (strcmp(jf_way_info((jf_way_t)w)->name, c[0]) == 0)
                info = jf_way_info((jf_way_t)w), seen[w] = true;
        cr_assert_not_null(info, "job-flow.md names a way the code does not have: %s", c[0]);
        rows++;

        cr_assert(strncmp(c[2], ack_text(info->ack), strlen(ack_text(info->ack))) == 0,
                  "%s: ack '%s' in the doc, %s in the code", c[0], c[2], ack_text(info->ack));
        if (info->ack == JF_ACK_NAK)
            cr_assert(strstr(c[2], "with") == NULL, "%s: the code NAKs at once", c[0]);
        cr_assert_str_eq(c[3], info->dead_letter ? info->dead_letter : "none",
                         "%s: dead letter", c[0]);
        cr_assert(strncmp(c[4], record_text(info->record), strlen(record_text(info->record)))
                      == 0, "%s: ledger '%s' in the doc, %s in the code", c[0], c[4],
                  record_text(info->record));
        snprintf(want, sizeof(want), "%s (%s)", info->log_msg, level_text(info->level));
        cr_assert_str_eq(c[5], want, "%s: log line", c[0]);
        snprintf(want, sizeof(want), "%s%s", info->outcome, info->counted ? "" : " (not counted)");
        cr_assert_str_eq(c[6], want, "%s: outcome", c[0]);
        if (info->events[0] == 0)
            snprintf(want, sizeof(want), "none");
        else if (info->events[1] == 0)
            snprintf(want, sizeof(want), "%s", jf_event_kind_name(info->events[0]));
        else
            snprintf(want, sizeof(want), "%s, %s", jf_event_kind_name(info->events[0]),
                     jf_event_kind_name(info->events[1]));
        cr_assert_str_eq(c[7], want, "%s: events", c[0]);
    }
    fclose(f);
    cr_assert_eq(rows, JF_WAY_MAX_, "job-flow.md's table has %d ways, the code %d", rows,
                 JF_WAY_MAX_);
    for (int w = 0; w < JF_WAY_MAX_; w++)
        cr_assert(seen[w], "job-flow.md does not list the way '%s'",
                  jf_way_info((jf_way_t)w)->name);
}
