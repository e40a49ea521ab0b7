#!/usr/bin/env bash
# The CI recipes of docs/CI.md (docs/ci/*.yml) are what a team copies into
# its pipeline, so they must work as written: yamllint (strict) passes on
# both, actionlint (with shellcheck) on the GitHub workflow, GitLab's file
# has the keys GitLab needs, every shell script in them passes shellcheck,
# every `postdeploy` command they run uses only options `postdeploy deploy
# --help` lists (--auto, --release and --wait among them) and fails the job
# on its exit status, and docs/CI.md shows each file as it is. A missing
# tool fails the check; actionlint is needed only where Go is, since
# scripts/setup.sh installs it through Go.
set -euo pipefail
: "${PD_SOURCE_DIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${PD_BUILD_DIR:=$PD_SOURCE_DIR/build}"
CI=$PD_SOURCE_DIR/docs/ci
fails=0
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
need() { command -v "$1" >/dev/null || { echo "FATAL: $1 is not installed (run scripts/setup.sh)"; exit 1; }; }
need yamllint
need shellcheck
need python3
python3 -c 'import yaml' 2>/dev/null || { echo "FATAL: python3-yaml is not installed (run scripts/setup.sh)"; exit 1; }
[ -x "$PD_BUILD_DIR/postdeploy" ] || { echo "FATAL: $PD_BUILD_DIR/postdeploy is not built"; exit 1; }

if yamllint --strict -c "$CI/.yamllint.yml" "$CI/github-actions.yml" "$CI/gitlab-ci.yml"; then
	echo "ok   - yamllint --strict passes on both recipes"
else
	fail "yamllint"
fi

actionlint=$(command -v actionlint || true)
if [ -z "$actionlint" ] && command -v go >/dev/null; then
	actionlint=$(go env GOPATH)/bin/actionlint
	[ -x "$actionlint" ] || { echo "FATAL: Go is here but actionlint is not installed (run scripts/setup.sh)"; exit 1; }
fi
if [ -z "$actionlint" ]; then
	echo "note - no Go toolchain, so no actionlint (scripts/setup.sh installs it with Go)"
elif "$actionlint" "$CI/github-actions.yml"; then
	echo "ok   - actionlint (with shellcheck) passes on the GitHub workflow"
else
	fail "actionlint"
fi

"$PD_BUILD_DIR/postdeploy" deploy --help >"${TMPDIR:-/tmp}/pd-deploy-help.$$"
trap 'rm -f "${TMPDIR:-/tmp}/pd-deploy-help.$$"' EXIT
python3 - "$CI" "$PD_SOURCE_DIR/docs/CI.md" "${TMPDIR:-/tmp}/pd-deploy-help.$$" <<'PY' || fails=$((fails + 1))
import re, shlex, subprocess, sys, yaml

ci, doc_path, help_path = sys.argv[1:]
fails = 0
def check(what, cond):
    global fails
    print(("ok   - " if cond else "FAIL - ") + what)
    fails += not cond

gh = yaml.safe_load(open(ci + "/github-actions.yml"))
gl = yaml.safe_load(open(ci + "/gitlab-ci.yml"))

# GitLab: its global keywords, then jobs with a script and a known stage.
GLOBAL = {"default", "include", "stages", "variables", "workflow", "image",
          "services", "cache", "before_script", "after_script"}
JOB = {"after_script", "allow_failure", "artifacts", "before_script", "cache",
       "coverage", "dependencies", "environment", "extends", "hooks",
       "id_tokens", "image", "inherit", "interruptible", "needs", "parallel",
       "release", "resource_group", "retry", "rules", "script", "secrets",
       "services", "stage", "tags", "timeout", "trigger", "variables", "when"}
check("gitlab-ci.yml is a mapping with a list of stages",
      isinstance(gl, dict) and isinstance(gl.get("stages"), list)
      and all(isinstance(s, str) for s in gl["stages"]))
jobs = {k: v for k, v in gl.items() if k not in GLOBAL and not k.startswith(".")}
check("gitlab-ci.yml has jobs", len(jobs) > 0)
for name, job in jobs.items():
    ok = isinstance(job, dict)
    check("GitLab job %s is a mapping of job keywords (unknown: %s)"
          % (name, sorted(set(job) - JOB) if ok else "-"),
          ok and not set(job) - JOB)
    if not ok:
        continue
    script = job.get("script")
    check("GitLab job %s has a script" % name,
          isinstance(script, str) and script.strip() or
          isinstance(script, list) and script and
          all(isinstance(s, str) for s in script))
    check("GitLab job %s is in a declared stage" % name,
          job.get("stage", "test") in gl.get("stages", []))
    for n in job.get("needs", []):
        check("GitLab job %s needs a job that exists (%s)" % (name, n), n in jobs)

# GitHub: the shape actionlint checks in depth, for machines without Go.
check("github-actions.yml has a trigger and jobs with runs-on and steps",
      isinstance(gh, dict) and ("on" in gh or True in gh)  # YAML 1.1: on = true
      and isinstance(gh.get("jobs"), dict)
      and all("runs-on" in j and isinstance(j.get("steps"), list)
              for j in gh["jobs"].values()))

# Every shell script, as the runner would run it.
scripts = []
for name, j in gh["jobs"].items():
    for st in j["steps"]:
        if "run" in st and "${{" not in st["run"]:
            scripts.append(("GitHub step '%s'" % st.get("name", st["run"][:20]),
                            st["run"]))
# GitLab runs before_script and script in one shell, after_script in another.
for name, job in jobs.items():
    for keys in (("before_script", "script"), ("after_script",)):
        parts = []
        for key in keys:
            v = job.get(key, [])
            parts += [v] if isinstance(v, str) else v
        if parts:
            scripts.append(("GitLab job %s (%s)" % (name, "+".join(keys)),
                            "\n".join(parts)))
for what, s in scripts:
    r = subprocess.run(["shellcheck", "-s", "bash", "-"], input=s, text=True,
                       capture_output=True)
    check("shellcheck passes on %s%s" % (what, "\n" + r.stdout if r.returncode else ""),
          r.returncode == 0)

# Each postdeploy command: options that `deploy --help` lists, and its exit
# status fails the job with a word on what it means.
known = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", open(help_path).read()))
found = {"GitHub": 0, "GitLab": 0}
for what, s in scripts:
    s = s.replace("\\\n", " ")
    for line in s.splitlines():
        words = line.strip().split()
        if not words or words[0] != "postdeploy":
            continue
        found[what.split()[0]] += 1
        argv = []
        for w in shlex.split(line, comments=True):
            if w in ("||", "&&", ";", "|"):
                break
            argv.append(w)
        opts = [w.split("=")[0] for w in argv[2:] if w.startswith("-")]
        check("%s runs `postdeploy deploy`" % what, argv[1:2] == ["deploy"])
        unknown = [o for o in opts if o not in known]
        check("%s: every option is in `postdeploy deploy --help` (%s; unknown: %s)"
              % (what, " ".join(opts), unknown), opts and not unknown)
        check("%s: --auto, --release and --wait are given" % what,
              {"--auto", "--release", "--wait"} <= set(opts))
        for rc in ("1", "3", "4"):
            check("%s: exit %s is explained" % (what, rc),
                  re.search(r"^\s*%s\)\s*echo" % rc, s, re.M) is not None)
        check("%s: exits with postdeploy's exit status" % what,
              re.search(r'^\s*exit "\$rc"\s*$', s, re.M) is not None)
check("each recipe runs postdeploy once (%r)" % found,
      found == {"GitHub": 1, "GitLab": 1})

# docs/CI.md shows the files as they are.
doc = open(doc_path).read()
for f in ("github-actions.yml", "gitlab-ci.yml"):
    body = open(ci + "/" + f).read()
    check("docs/CI.md shows docs/ci/%s as it is" % f,
          "```yaml\n" + body + "```\n" in doc)
sys.exit(1 if fails else 0)
PY
if [ "$fails" -gt 0 ]; then
	echo "FAIL - the CI recipes ($fails failed part(s))"
	exit 1
fi
echo "ok   - the CI recipes"
