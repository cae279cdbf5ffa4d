#!/usr/bin/env bash
# test_gates.sh - proves that the compliance gates (scripts/gates, scripts/lib/) catch
# what they claim to catch.
#
# A gate that always passes looks exactly like a gate on a clean tree, so each
# checker is run here against small fixture trees built in a temporary directory:
# once clean (must pass) and once with a planted violation (must fail, and say why).
# The fixtures compile with the real `cc` and configure with the real `meson`, so the
# compiler-driven gates (madge, depcheck) are exercised for real. A last group runs
# the whole scripts/gates on a tiny meson project and checks the verdict line.
#
# Usage: bash tests/gates/test_gates.sh   (JF_SRC_ROOT: the jetfleet checkout; by
# default the one holding this file; JF_GATES_KEEP_TMP=1 keeps the fixtures). Prints
# `N passed, N failed` last; exits 1 on any failure.
set -u -o pipefail

SRC_ROOT=${JF_SRC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LIB=$SRC_ROOT/scripts/lib
PY=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jf-gates-test.XXXXXX")
# JF_GATES_KEEP_TMP=1 keeps the fixtures for a look after a failure.
if [ "${JF_GATES_KEEP_TMP:-0}" = 1 ]; then
  trap 'echo "fixtures kept in $TMP" >&2' EXIT
else
  trap 'rm -rf "$TMP"' EXIT
fi

passed=0 failed=0 last_out=

# check NAME pass|fail REGEX -- CMD... : CMD must exit 0 (pass) or non-zero (fail),
# and its output must match the extended regex REGEX ('' to skip that part).
check() {
  local name=$1 want=$2 pat=$3; shift 4
  local out rc got
  out=$("$@" 2>&1); rc=$?
  last_out=$out
  if [ $rc -eq 0 ]; then got=pass; else got=fail; fi
  if [ "$got" = "$want" ] && { [ -z "$pat" ] || grep -Eq -- "$pat" <<<"$out"; }; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name (wanted $want${pat:+ matching /$pat/}, got $got, rc $rc)"
    sed 's/^/    | /' <<<"$out" | head -n 60
    failed=$((failed + 1))
  fi
}

# put FILE <<EOF : write a fixture file, creating its directory.
put() { mkdir -p "$(dirname "$1")"; cat > "$1"; }

# ---------------------------------------------------------------------------------
# skott: incgraph.py
# ---------------------------------------------------------------------------------
fx=$TMP/skott-ok
put "$fx/include/jetfleet/job.h" <<'EOF'
/* public header */
#pragma once
EOF
put "$fx/src/core/a.h" <<'EOF'
#pragma once
#include "core/b.h"
/* #include "core/a.h"   a commented-out include is not an edge */
EOF
put "$fx/src/core/b.h" <<'EOF'
#pragma once
#include <jetfleet/job.h>
#include <stdio.h>
#include <jetfleet/v1/event.pb-c.h>
EOF
put "$fx/src/core/a.c" <<'EOF'
#include "a.h"
EOF
check "skott passes an acyclic tree" pass "no include cycles" -- \
  "$PY" "$LIB/incgraph.py" --root "$fx"

fx=$TMP/skott-cycle
cp -r "$TMP/skott-ok" "$fx"
put "$fx/src/core/b.h" <<'EOF'
#pragma once
#include "a.h"
EOF
check "skott fails on a.h -> b.h -> a.h" fail "cycle: src/core/a.h -> src/core/b.h -> src/core/a.h" -- \
  "$PY" "$LIB/incgraph.py" --root "$fx"

fx=$TMP/skott-missing
cp -r "$TMP/skott-ok" "$fx"
echo '#include "core/nowhere.h"' >> "$fx/src/core/a.c"
check "skott fails on an include that resolves to nothing" fail 'unresolved: src/core/a.c:2: #include "core/nowhere.h"' -- \
  "$PY" "$LIB/incgraph.py" --root "$fx"

# ---------------------------------------------------------------------------------
# madge: layergraph.py over a compile database of real cc commands
# ---------------------------------------------------------------------------------
mk_layer_fixture() { # $1 = root
  local r=$1
  put "$r/include/jetfleet/job.h" <<'EOF'
#ifndef JF_JOB_H
#define JF_JOB_H
typedef struct jf_job jf_job_t;
#endif
EOF
  put "$r/src/shared/err.h" <<'EOF'
#ifndef JF_ERR_H
#define JF_ERR_H
#include <jetfleet/job.h>
#endif
EOF
  put "$r/src/core/config.h" <<'EOF'
#ifndef JF_CONFIG_H
#define JF_CONFIG_H
#include "shared/err.h"
int jf_config_get(void);
#endif
EOF
  put "$r/src/core/config.c" <<'EOF'
#include "core/config.h"
#include <stdio.h>
int jf_config_get(void) { return 1; }
EOF
  put "$r/src/modules/a/contract.h" <<'EOF'
#ifndef A_CONTRACT_H
#define A_CONTRACT_H
#include "core/config.h"
#endif
EOF
  put "$r/src/modules/a/a_priv.h" <<'EOF'
#ifndef A_PRIV_H
#define A_PRIV_H
int a_helper(void);
#endif
EOF
  put "$r/src/modules/a/a.c" <<'EOF'
#include "modules/a/contract.h"
#include "modules/b/contract.h"
#include "a_priv.h"
int a_helper(void) { return 0; }
EOF
  put "$r/src/modules/b/contract.h" <<'EOF'
#ifndef B_CONTRACT_H
#define B_CONTRACT_H
#include <jetfleet/job.h>
#endif
EOF
  put "$r/src/modules/b/b.c" <<'EOF'
#include "modules/b/contract.h"
EOF
  put "$r/src/app/main.c" <<'EOF'
#include "core/config.h"
#include "modules/a/contract.h"
#include "modules/b/contract.h"
int main(void) { return jf_config_get() - 1; }
EOF
  write_compdb "$r"
}

# write_compdb ROOT: compile_commands.json for every .c file under ROOT/src.
write_compdb() {
  local r=$1
  mkdir -p "$r/build"
  "$PY" - "$r" <<'EOF'
import json, os, sys
r = sys.argv[1]
out = []
for dp, _, fns in sorted(os.walk(os.path.join(r, "src"))):
    for fn in sorted(fns):
        if fn.endswith(".c"):
            src = os.path.relpath(os.path.join(dp, fn), os.path.join(r, "build"))
            obj = src.replace("/", "_").replace("..", "") + ".o"
            out.append({"directory": os.path.join(r, "build"), "file": src, "output": obj,
                        "command": f"cc -I../src -I../include -Wall -Werror -MD -MQ {obj} -MF {obj}.d -o {obj} -c {src}"})
json.dump(out, open(os.path.join(r, "build", "compile_commands.json"), "w"), indent=1)
EOF
}

madge() { # $1 = root, $2 = deps text
  printf '%b' "$2" > "$1/deps.txt"
  "$PY" "$LIB/layergraph.py" --src-root "$1" --builddir "$1/build" --deps-file "$1/deps.txt"
}

fx=$TMP/madge-ok
mk_layer_fixture "$fx"
check "madge passes a clean layered tree (a requires b)" pass "no cycle" -- madge "$fx" 'a -> b\n'
check "madge passes with no module requirements" pass "module requirements .*: 0" -- madge "$fx" ''

check "madge fails on a module cycle via contract requirements (a->b, b->a)" fail \
  "cycle: module:a -> module:b -> module:a" -- madge "$fx" 'a -> b\nb -> a\n'

check "madge fails on an include edge plus a reverse requirement (a includes b, b requires a)" fail \
  "cycle: module:a -> module:b -> module:a" -- madge "$fx" 'b -> a\n'

check "madge fails on unparseable requirement lines" fail "unparseable" -- madge "$fx" 'a requires b\n'

check "madge fails clearly when the jetfleet binary is missing" fail "does not exist" -- \
  "$PY" "$LIB/layergraph.py" --src-root "$fx" --builddir "$fx/build"

fx=$TMP/madge-core-module
mk_layer_fixture "$fx"
put "$fx/src/core/config.c" <<'EOF'
#include "core/config.h"
#include "modules/a/contract.h"
int jf_config_get(void) { return 1; }
EOF
check "madge fails when core includes a module header" fail \
  "src/core/config.c -> src/modules/a/contract.h: core may not include module:a" -- madge "$fx" ''

fx=$TMP/madge-private
mk_layer_fixture "$fx"
put "$fx/src/modules/b/b.c" <<'EOF'
#include "modules/b/contract.h"
#include "modules/a/a_priv.h"
EOF
check "madge fails when a module includes another module's private file" fail \
  "src/modules/b/b.c -> src/modules/a/a_priv.h: module:a is reached through a private file" -- madge "$fx" ''

# The printed scan for the same rule (modscan.py): hits are its output, like grep.
scan_clean() { local out; out=$("$PY" "$LIB/modscan.py" "$1"); printf '%s\n' "$out"; [ -z "$out" ]; }
echo '#include "../a/a_priv.h"' >> "$fx/src/modules/b/b.c"
check "module-private scan flags another module's private file (include-root form)" fail \
  'b\.c:2:#include "modules/a/a_priv\.h"' -- scan_clean "$fx/src/modules"
check "module-private scan flags another module's private file (relative form)" fail \
  'b\.c:3:#include "\.\./a/a_priv\.h"' -- scan_clean "$fx/src/modules"
check "module-private scan is clean on contract.h and own-module includes" pass "" -- \
  scan_clean "$TMP/madge-ok/src/modules"

fx=$TMP/madge-public
mk_layer_fixture "$fx"
put "$fx/include/jetfleet/job.h" <<'EOF'
#ifndef JF_JOB_H
#define JF_JOB_H
#include "shared/err.h"
#endif
EOF
check "madge fails when include/ reaches into src/ (seen by preprocessing the header alone)" fail \
  "include/jetfleet/job.h -> src/shared/err.h: include may not include shared" -- madge "$fx" ''

fx=$TMP/madge-header-cycle
mk_layer_fixture "$fx"
rm "$fx/src/modules/b/b.c"
put "$fx/src/modules/b/contract.h" <<'EOF'
#ifndef B_CONTRACT_H
#define B_CONTRACT_H
#include "modules/a/contract.h"
#endif
EOF
write_compdb "$fx"
check "madge finds a module cycle that only a header closes (b/contract.h -> a/contract.h)" fail \
  "cycle: module:a -> module:b -> module:a" -- madge "$fx" ''

# ---------------------------------------------------------------------------------
# depcheck: depcheck.py over real meson projects
# ---------------------------------------------------------------------------------
mk_meson() { # $1 = root, $2 = dependency lines, $3 = dependency list, $4 = a.c body
  mkdir -p "$1"
  cat > "$1/meson.build" <<EOF
project('fx', 'c', default_options : ['warning_level=3', 'werror=true'])
$2
executable('fx', 'a.c', dependencies : [$3])
EOF
  printf '%s\n' "$4" > "$1/a.c"
  meson setup "$1/build" "$1" > "$1/setup.log" 2>&1 || { cat "$1/setup.log"; return 1; }
}
depcheck() { "$PY" "$LIB/depcheck.py" --src-root "$1" --builddir "$1/build" --cache "$1/dpkg-cache.json" "${@:2}"; }

fx=$TMP/dep-unused
mk_meson "$fx" "jansson_dep = dependency('jansson')" "jansson_dep" \
  '#include <stdio.h>
int main(void) { puts("fx"); return 0; }'
check "depcheck fails on a declared but unused dependency (jansson)" fail \
  "dependency 'jansson' is declared but unused" -- depcheck "$fx"

fx=$TMP/dep-undeclared
mk_meson "$fx" "m_dep = meson.get_compiler('c').find_library('m')" "m_dep" \
  '#include <jansson.h>
int main(void) { json_t *j = NULL; return j != NULL; }'
check "depcheck fails on a header from an undeclared package (<jansson.h>)" fail \
  "a.c:1: #include <jansson.h> \(undeclared: libjansson-dev\)" -- depcheck "$fx"

fx=$TMP/dep-ok
mk_meson "$fx" "jansson_dep = dependency('jansson')
thread_dep = dependency('threads')" "jansson_dep, thread_dep" \
  '#include "x.h"
#include <stdio.h>
#include <math.h>
int main(void) { json_t *j = NULL; return j != NULL; }'
put "$fx/x.h" <<'EOF'
/* A project header: its <jansson.h> is a direct use, charged to x.h. */
#include <jansson.h>
#if 0
#include <curl/curl.h>
#endif
EOF
check "depcheck passes when declared and used (through a project header; dead #if ignored)" pass \
  "jansson .*used by 1 file\(s\), e.g. x.h:2 <jansson.h>" -- depcheck "$fx"

put "$fx/table.tsv" <<'EOF'
libbsd	libbsd-dev
EOF
check "depcheck fails on a dependency missing from deps.tsv" fail \
  "'jansson' has no row in scripts/lib/deps.tsv" -- depcheck "$fx" --deps-table "$fx/table.tsv"

# ---------------------------------------------------------------------------------
# env:check: envcheck.py
# ---------------------------------------------------------------------------------
fx=$TMP/env
put "$fx/src/core/cfg.c" <<'EOF'
/* "JF_IN_COMMENT" is not read by anybody */
#define JF_IDENT_ONLY 1
static const char *names[] = { "JF_FOO", "JF_BAR", "JF_OK", "JF_EINVAL", "JF_NATS_TLS_*" };
static const char *msg = "set JF_FOO to a positive number";
EOF
printf 'JF_FOO\nJF_BAR\n' > "$fx/schema.txt"
put "$fx/.env.example" <<'EOF'
# jetfleet environment
JF_FOO=1
# JF_BAR=
EOF
put "$fx/docs/configuration.md" <<'EOF'
| `JF_FOO` | ... |
| `JF_BAR` | ... |
EOF
check "env:check passes when code, schema, .env.example and docs agree" pass "agree" -- \
  "$PY" "$LIB/envcheck.py" --src-root "$fx" --schema-file "$fx/schema.txt"

printf 'JF_FOO\n' > "$fx/schema-short.txt"
check "env:check fails when a \"JF_BAR\" literal is not in the schema" fail \
  "JF_BAR \(used at src/core/cfg.c:3\) is not in the schema" -- \
  "$PY" "$LIB/envcheck.py" --src-root "$fx" --schema-file "$fx/schema-short.txt"

printf 'JF_FOO\nJF_BAR\nJF_BAZ\n' > "$fx/schema-long.txt"
check "env:check fails when a schema name is missing from .env.example and docs" fail \
  "JF_BAZ is not in .env.example" -- \
  "$PY" "$LIB/envcheck.py" --src-root "$fx" --schema-file "$fx/schema-long.txt"

echo 'static const char *bucket = "JF_BUCKET";' >> "$fx/src/core/cfg.c"
check "env:check fails on a JF_ literal that is no variable, unless it is in the ignore file" fail \
  "JF_BUCKET \(used at src/core/cfg.c:5\) is not in the schema" -- \
  "$PY" "$LIB/envcheck.py" --src-root "$fx" --schema-file "$fx/schema.txt" --ignore-file /dev/null
printf 'JF_BUCKET  # a KV bucket name\n' > "$fx/ignore.txt"
check "env:check honours the ignore file" pass "agree" -- \
  "$PY" "$LIB/envcheck.py" --src-root "$fx" --schema-file "$fx/schema.txt" --ignore-file "$fx/ignore.txt"

check "env:check fails clearly when the jetfleet binary is missing" fail "does not exist" -- \
  "$PY" "$LIB/envcheck.py" --src-root "$fx" --builddir "$fx/build"

# ---------------------------------------------------------------------------------
# workers: workerscan.py (no business rule in src/app/worker; modules only through
# the registry; modules behind their contracts)
# ---------------------------------------------------------------------------------
ws() { "$PY" "$LIB/workerscan.py" --src-root "$1"; }

fx=$TMP/ws-ok
put "$fx/src/modules/hooks/contract.h" <<'EOF'
#include <jetfleet/module.h>
extern const jf_module_t jf_module_hooks;
EOF
put "$fx/src/modules/hooks/priv.h" <<'EOF'
int hooks_sign(void);
EOF
put "$fx/src/modules/hooks/hooks.c" <<'EOF'
#include "modules/hooks/contract.h"
#include "priv.h"
int hooks_sign(void) { return 0; }
static jf_result_t hooks_send(jf_job_t *job, const ProtobufCMessage *p) { (void)job; (void)p; return hooks_sign(); }
static jf_status_t hooks_init(jf_module_ctx_t *m) { (void)m; return JF_OK; }
static const jf_job_type_t hooks_types[] = {
    { .action = "send", .summary = "x == y", .handler = hooks_send },
    { 0 },
};
const jf_module_t jf_module_hooks = { .name = "hooks", .job_types = hooks_types, .init = hooks_init };
EOF
put "$fx/src/modules/tools/tools.c" <<'EOF'
#include "modules/hooks/contract.h"
#include "tools_priv.h"
#include "../tools/tools_priv.h"
static int tools_probe(void) { return 0; }
static const jf_job_type_t tools_types[] = { { .action = "probe", .handler = tools_probe }, { 0 } };
const jf_module_t jf_module_tools = { .name = "tools", .job_types = tools_types };
EOF
put "$fx/src/modules/tools/tools_priv.h" <<'EOF'
/* private to tools */
EOF
put "$fx/src/security/authz.h" <<'EOF'
/* security */
EOF
put "$fx/src/app/modules.c" <<'EOF'
#include "modules/hooks/contract.h"
#include "modules/tools/contract.h"
const jf_module_t *const jf_app_modules[] = { &jf_module_hooks, &jf_module_tools, NULL };
EOF
put "$fx/src/app/cli.c" <<'EOF'
#include "app/modules.h"   /* the composition root's header, not a module's */
int cli(void) { return 0; }
EOF
put "$fx/src/app/modules.h" <<'EOF'
extern const jf_module_t *const jf_app_modules[];
EOF
put "$fx/src/app/worker/run.c" <<'EOF'
/* A comment may say "hooks.send", hooks_send() or #include "modules/hooks/priv.h". */
// "tools.probe" and jf_module_hooks in a line comment
#include <sys/socket.h>
#include "app/modules.h"
static const char *outcomes[] = { "failed", "sends", "hooks-x", "tool", "send %s", NULL };
static const char quote = '"';
static int send_all(int fd, const void *b, size_t n) { return (int)send(fd, b, n, 0); }
static void probe(void) { }   /* a bare action is a C name of its own */
static jf_result_t run(const jf_job_type_t *jt, jf_job_t *job, const ProtobufCMessage *p)
{
    return jt->handler(job, p);   /* handlers only through the registry */
}
EOF
put "$fx/src/core/ops.c" <<'EOF'
/* a field that shares a handler's name is a field; an own function is its own symbol */
struct ops { int (*hooks_send)(void); };
int ops_call(struct ops *o) { return o->hooks_send(); }
static int hooks_init(void) { return 0; }
int ops_init(void) { return hooks_init(); }
EOF
check "workers passes a clean tree (comments, look-alike literals and bare action names ignored)" pass \
  "workerscan: PASS" -- ws "$fx"
check "workers prints what it derived from the tree" pass \
  "^job types \(2, from .action initializers\): hooks.send, tools.probe$" -- ws "$fx"
check "workers prints the handler symbols and other module functions" pass \
  "^other module functions \(2, .*\): hooks_init, hooks_sign$" -- ws "$fx"
check "workers notes, but allows, a file's own function named like a module function" pass \
  "note: src/core/ops.c:4: hooks_init is this file's own function \(module hooks has a init of the same name\)" -- ws "$fx"
check "workers prints the handler call it saw in worker code" pass \
  "handler. field uses in worker code: src/app/worker/run.c:11" -- ws "$fx"

ws_n=0
# ws_plant NAME REGEX FILE TEXT: a copy of the clean fixture, with TEXT appended to
# FILE (relative to the copy), must fail with output matching REGEX.
ws_plant() {
  ws_n=$((ws_n + 1))
  local fx=$TMP/ws-plant-$ws_n
  cp -r "$TMP/ws-ok" "$fx"
  mkdir -p "$(dirname "$fx/$3")"
  printf '%s\n' "$4" >> "$fx/$3"
  check "$1" fail "$2" -- ws "$fx"
}
ws_plant "workers fails on a job type literal in worker code" \
  'src/app/worker/run.c:13: string literal "hooks.send" names job type hooks.send' \
  src/app/worker/run.c 'static const char *t = "hooks.send";'
ws_plant "workers fails on a bare action literal in worker code" \
  'run.c:13: string literal "probe" names action probe of module tools' \
  src/app/worker/run.c 'static const char *t = "probe";'
ws_plant "workers fails on a module name literal in a new worker file" \
  'src/app/worker/sub/x.h:1: string literal "tools" names module name tools' \
  src/app/worker/sub/x.h '#define MOD "tools"'
ws_plant "workers fails on a hard-coded subject naming a job type" \
  'string literal "jobs.acme.hooks.send" names job type hooks.send inside a subject' \
  src/app/worker/run.c 'static const char *s = "jobs.acme.hooks.send";'
ws_plant "workers fails on a job type split over adjacent literals" \
  'string literal "hooks.send" names job type hooks.send' \
  src/app/worker/run.c 'static const char *s = "hooks" ".send";'
ws_plant "workers fails on a module name identifier in worker code" \
  'run.c:13: identifier hooks names module name hooks' \
  src/app/worker/run.c 'static int hooks;'
ws_plant "workers fails on a job type spelt as a macro name in worker code" \
  'run.c:13: identifier JF_HOOKS_SEND names job type hooks.send' \
  src/app/worker/run.c '#define JF_HOOKS_SEND 1'
ws_plant "workers fails on a module's payload type in worker code" \
  'identifier Jetfleet__Hooks__V1__Send names a type or symbol of module hooks' \
  src/app/worker/run.c 'static Jetfleet__Hooks__V1__Send *msg;'
ws_plant "workers fails on a worker file calling a module handler" \
  "\(c\) src/app/worker/run.c:13: hooks_send is module hooks's handler \(src/modules/hooks/hooks.c:7\)" \
  src/app/worker/run.c 'static jf_result_t direct(jf_job_t *j) { return hooks_send(j, NULL); }'
ws_plant "workers fails on app code calling a module's non-static function" \
  "cli.c:3: hooks_sign is module hooks's exported function" \
  src/app/cli.c 'int bypass(void) { return hooks_sign(); }'
ws_plant "workers fails on a module descriptor named outside the composition root" \
  "cli.c:3: jf_module_tools is module tools's descriptor; only src/app/modules.c names it" \
  src/app/cli.c 'const void *d = &jf_module_tools;'
ws_plant "workers fails on a module handler named in the composition root too" \
  "src/app/modules.c:4: hooks_send is module hooks's handler" \
  src/app/modules.c 'void *h = (void *)hooks_send;'
ws_plant "workers fails on an app file including a module's private header" \
  '\(a\) src/app/cli.c:3: #include "modules/hooks/priv.h"  -> src/modules/hooks/priv.h' \
  src/app/cli.c '#include "modules/hooks/priv.h"'
ws_plant "workers fails on an app file including a module's private header (relative form)" \
  '\(a\) src/app/cli.c:3: #include "../modules/hooks/priv.h"  -> src/modules/hooks/priv.h' \
  src/app/cli.c '#include "../modules/hooks/priv.h"'
ws_plant "workers fails on a worker file including even a module's contract.h" \
  '\(a\) src/app/worker/run.c:13: #include <modules/hooks/contract.h>' \
  src/app/worker/run.c '#include <modules/hooks/contract.h>'
ws_plant "workers fails on a worker file including a module's payload proto" \
  'run.c:13: #include <jetfleet/hooks/v1/hooks.pb-c.h>: the payload proto of module hooks' \
  src/app/worker/run.c '#include <jetfleet/hooks/v1/hooks.pb-c.h>'
ws_plant "workers fails on a module including src/security" \
  '\(d\) src/modules/tools/tools.c:7: #include "security/authz.h"  -> src/security/authz.h' \
  src/modules/tools/tools.c '#include "security/authz.h"'
ws_plant "workers fails on a module including src/security (relative form)" \
  '\(d\) src/modules/tools/tools.c:7: #include "../../security/authz.h"' \
  src/modules/tools/tools.c '#include "../../security/authz.h"'
ws_plant "workers fails on a module including another module's private file" \
  '\(d\) src/modules/tools/tools.c:7: #include "../hooks/priv.h"  -> src/modules/hooks/priv.h: private to module hooks' \
  src/modules/tools/tools.c '#include "../hooks/priv.h"'

fx=$TMP/ws-grows
cp -r "$TMP/ws-ok" "$fx"
put "$fx/src/modules/mail/mail.c" <<'EOF'
static const jf_job_type_t mail_types[] = { { .action = "notify", .handler = mail_notify }, { 0 } };
EOF
echo 'static const char *t = "notify";' >> "$fx/src/app/worker/run.c"
check "workers derives modules at run time (a new module's action is caught)" fail \
  'string literal "notify" names action notify of module mail' -- ws "$fx"

fx=$TMP/ws-empty
cp -r "$TMP/ws-ok" "$fx"
rm -rf "$fx/src/app/worker"
check "workers fails when there is no src/app/worker to scan" fail "nothing to prove" -- ws "$fx"

# The same checker on a copy of this project's own src/: clean, then one planted
# violation each (the job type, handler and header come from the tree itself).
fx=$TMP/ws-real
mkdir -p "$fx" && cp -r "$SRC_ROOT/src" "$fx/src"
check "workers passes a copy of the real tree" pass "workerscan: PASS" -- ws "$fx"
real_out=$last_out
pick() { # pick PREFERRED LIST-LINE-REGEX: PREFERRED if the list has it, else its first item
  local list; list=$(sed -n "s/^$2: //p" <<<"$real_out" | tr -d ' ' | tr ',' '\n')
  if grep -qx -- "$1" <<<"$list"; then echo "$1"; else head -n 1 <<<"$list"; fi
}
real_type=$(pick webhooks.deliver 'job types ([0-9]*, from .action initializers)')
real_handler=$(pick webhooks_deliver 'handler symbols ([0-9]*, from .handler initializers)')
real_mod=${real_type%%.*}

fx=$TMP/ws-real-literal
cp -r "$TMP/ws-real" "$fx"
put "$fx/src/app/worker/planted_literal.c" <<EOF
/* planted: a worker file that routes on a job type itself */
static const char *const planted_type = "$real_type";
EOF
check "workers fails on the real tree with a \"$real_type\" literal in a worker file" fail \
  "src/app/worker/planted_literal.c:2: string literal \"$real_type\" names job type $real_type" -- ws "$fx"

fx=$TMP/ws-real-handler
cp -r "$TMP/ws-real" "$fx"
put "$fx/src/app/worker/planted_call.c" <<EOF
#include <jetfleet/module.h>
jf_result_t $real_handler(jf_job_t *job, const ProtobufCMessage *payload);
jf_result_t planted_direct(jf_job_t *job) { return $real_handler(job, NULL); }
EOF
check "workers fails on the real tree with a worker file calling $real_handler()" fail \
  "src/app/worker/planted_call.c:3: $real_handler is module $real_mod's handler" -- ws "$fx"

fx=$TMP/ws-real-private
cp -r "$TMP/ws-real" "$fx"
put "$fx/src/modules/$real_mod/planted_priv.h" <<'EOF'
/* planted: private to its module */
EOF
put "$fx/src/app/cmd_planted.c" <<EOF
#include "modules/$real_mod/planted_priv.h"
EOF
check "workers fails on the real tree with an app file including modules/$real_mod/planted_priv.h" fail \
  "src/app/cmd_planted.c:1: #include \"modules/$real_mod/planted_priv.h\"  -> src/modules/$real_mod/planted_priv.h" -- ws "$fx"

# ---------------------------------------------------------------------------------
# scripts/gates end to end, on a tiny project laid out like jetfleet
# ---------------------------------------------------------------------------------
fx=$TMP/e2e
mkdir -p "$fx/scripts"
cp "$SRC_ROOT/scripts/gates" "$fx/scripts/gates"
cp -r "$LIB" "$fx/scripts/lib"
rm -rf "$fx/scripts/lib/__pycache__"
put "$fx/meson.build" <<'EOF'
project('e2e', 'c', default_options : ['warning_level=3', 'werror=true', 'c_std=gnu11'])
jansson_dep = dependency('jansson')
inc = include_directories('src', 'include')
core = static_library('core', 'src/core/json.c', include_directories : inc, dependencies : jansson_dep)
mods = static_library('mods', 'src/modules/ping/ping.c', include_directories : inc, link_with : core)
subdir('src/app')
test('cli', exe, args : ['config', 'schema', '--names'])
EOF
put "$fx/src/app/meson.build" <<'EOF'
exe = executable('jetfleet', 'main.c', 'worker/loop.c', include_directories : inc, link_with : [core, mods])
EOF
put "$fx/include/jetfleet/job.h" <<'EOF'
/* public API */
#ifndef JF_JOB_H
#define JF_JOB_H
int jf_count(void);
#endif
EOF
put "$fx/src/core/json.c" <<'EOF'
/* core: uses jansson */
#include <jansson.h>
#include <jetfleet/job.h>
int jf_count(void) { json_t *o = json_object(); int n = (int)json_object_size(o); json_decref(o); return n; }
EOF
put "$fx/src/app/main.c" <<'EOF'
/* app: the CLI the gates query */
#include <stdio.h>
#include <string.h>
#include <jetfleet/job.h>
int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "modules") == 0 && strcmp(argv[2], "--deps") == 0)
        return jf_count();
    if (argc >= 4 && strcmp(argv[1], "config") == 0)
        return puts("JF_POOL") < 0;
    return 2;
}
EOF
put "$fx/src/modules/ping/ping.c" <<'EOF'
/* module ping: one job type, reached through its table */
#include <jetfleet/job.h>
struct ping_type { const char *action; int (*handler)(void); };
static int ping_pong(void) { return jf_count(); }
const struct ping_type ping_types[] = { { .action = "pong", .handler = ping_pong }, { 0, 0 } };
EOF
put "$fx/src/app/worker/loop.c" <<'EOF'
/* worker: runs whatever job type it is handed */
#include <jetfleet/job.h>
const char *jf_loop_type(void);
const char *jf_loop_type(void) { return jf_count() ? "none" : "?"; }
EOF
printf '# JF_POOL=4\n' > "$fx/.env.example"
put "$fx/docs/configuration.md" <<'EOF'
`JF_POOL` - worker pool size.
EOF
check "scripts/gates passes a compliant project" pass "Compliance verdict: PASS$" -- "$fx/scripts/gates"
last=$(tail -n 1 <<<"$last_out")
if [ "$last" = "Compliance verdict: PASS" ]; then
  echo "ok - scripts/gates ends with exactly the verdict line"; passed=$((passed + 1))
else
  echo "not ok - scripts/gates ends with exactly the verdict line (last line: $last)"; failed=$((failed + 1))
fi
check "scripts/gates --skip-test says tests were skipped" pass "^Compliance verdict: PASS \(tests skipped\)$" -- \
  "$fx/scripts/gates" --skip-test

mkdir -p "$fx/src/core" && echo '#include "app/cli.h"' > "$fx/src/core/bad.h"
echo '/* app header */' > "$fx/src/app/cli.h"
check "scripts/gates fails when core includes app (scan hit printed)" fail \
  "src/core/bad.h:1:#include \"app/cli.h\"" -- "$fx/scripts/gates" --skip-test
if [ "$(tail -n 1 <<<"$last_out")" = "Compliance verdict: FAIL" ]; then
  echo "ok - scripts/gates then ends with the FAIL verdict"; passed=$((passed + 1))
else
  echo "not ok - scripts/gates then ends with the FAIL verdict"; failed=$((failed + 1))
fi
rm "$fx/src/core/bad.h"

sed -i 's/"none"/"ping.pong"/' "$fx/src/app/worker/loop.c"
check "scripts/gates fails when a worker file names a job type (workers step)" fail \
  'workers: FAIL' -- "$fx/scripts/gates" --skip-test
if grep -q 'string literal "ping.pong" names job type ping.pong' <<<"$last_out" &&
   grep -Eq '^  workers +FAIL' <<<"$last_out"; then
  echo "ok - scripts/gates prints the worker violation and a workers FAIL summary row"; passed=$((passed + 1))
else
  echo "not ok - scripts/gates prints the worker violation and a workers FAIL summary row"; failed=$((failed + 1))
fi
sed -i 's/"ping.pong"/"none"/' "$fx/src/app/worker/loop.c"

sed -i 's/JF_POOL/JF_POOLS/' "$fx/src/app/main.c"
check "scripts/gates fails when the env schema and docs disagree" fail "env:check: FAIL" -- \
  "$fx/scripts/gates" --skip-test

sed -i 's/JF_POOLS/JF_POOL/' "$fx/src/app/main.c"
meson configure "$fx/build" -Dwerror=false > /dev/null
check "scripts/gates fails typecheck when werror is off" fail "need werror=true" -- \
  "$fx/scripts/gates" --skip-test

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
