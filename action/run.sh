#!/usr/bin/env bash
# The shell steps of the PolicyStrata GitHub Action (../action.yml); tests/test_action.py runs
# them locally. One subcommand per step:
#
#   run.sh install    install PolicyStrata into a venv with uv
#   run.sh postgres   make sure PostgreSQL server binaries exist when the scan will use a
#                     database (`strata scan` starts its own throwaway server from them)
#   run.sh scan       run `policystrata scan`, then write the step outputs, the job summary and a
#                     SARIF file with repository-relative paths; exit with the scan's exit code
#
# Inputs arrive as environment variables, never spliced into this script's text:
#   PS_ACTION_PATH     the action's checkout (default: this script's parent directory)
#   PS_VENV            the venv to install into / run from
#   PS_PYTHON_VERSION  a Python version or interpreter path for `uv venv --python`
#   PS_PACKAGE         a pip requirement; empty = the action's checkout, pinned by its uv.lock
#   PS_CONFIG          the scan config; PS_OUT the output directory
#   PS_EXTRA_ARGS      more scan arguments, split like a shell would (shlex), nothing expanded
# and GitHub's GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH, GITHUB_WORKSPACE when set.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
action_path="${PS_ACTION_PATH:-$(dirname "$here")}"
venv="${PS_VENV:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/policystrata-action/venv}"
python="$venv/bin/python"
helper="$here/policystrata_action.py"

log() { printf 'policystrata-action: %s\n' "$*" >&2; }

need_uv() {
    if ! command -v uv >/dev/null 2>&1; then
        log "uv is not on PATH (the action installs it with astral-sh/setup-uv)"
        exit 2
    fi
}

install() {
    need_uv
    uv venv --quiet --allow-existing --python "${PS_PYTHON_VERSION:-3.12}" "$venv"
    if [ -n "${PS_PACKAGE:-}" ]; then
        log "installing $PS_PACKAGE"
        uv pip install --quiet --python "$python" "$PS_PACKAGE"
    else
        log "installing the action's checkout ($action_path) with the versions of its uv.lock"
        local constraints
        constraints="$(mktemp)"
        uv export --quiet --frozen --no-dev --no-emit-project --no-hashes \
            --project "$action_path" --output-file "$constraints"
        uv pip install --quiet --python "$python" --constraints "$constraints" "$action_path"
        rm -f "$constraints"
    fi
    "$venv/bin/policystrata" --version
    # Later steps of the job can run `strata explain`, `strata check`, ... directly.
    if [ -n "${GITHUB_PATH:-}" ]; then
        printf '%s\n' "$venv/bin" >>"$GITHUB_PATH"
    fi
}

need_venv() {
    if [ ! -x "$python" ]; then
        log "PolicyStrata is not installed in $venv (the install step does that)"
        exit 2
    fi
}

postgres() {
    need_venv
    local plan
    plan="$("$python" "$helper" postgres-plan --config "${PS_CONFIG:-policystrata.yaml}" \
        --extra-args "${PS_EXTRA_ARGS:-}")"
    case "$plan" in
    install*)
        log "the scan uses a database and no PostgreSQL server binaries were found: installing"
        local sudo=()
        if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        fi
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends postgresql
        ;;
    *)
        log "$plan"
        ;;
    esac
}

scan() {
    need_venv
    local config="${PS_CONFIG:-policystrata.yaml}" out="${PS_OUT:-runs/policystrata}"
    local started="${EPOCHREALTIME:-$(date +%s)}" code=0 extra=() argsfile
    argsfile="$(mktemp)"
    if "$python" "$helper" split-args "${PS_EXTRA_ARGS:-}" >"$argsfile"; then
        mapfile -d '' -t extra <"$argsfile"
        "$venv/bin/policystrata" scan --config "$config" --out "$out" "${extra[@]}" || code=$?
    else
        code=2
    fi
    rm -f "$argsfile"
    if ! "$python" "$helper" finish --config "$config" --out "$out" --exit-code "$code" \
        --started "$started"; then
        log "could not write the step outputs and the job summary"
        [ "$code" -ne 0 ] || code=2
    fi
    exit "$code"
}

case "${1:-}" in
install | postgres | scan) "$1" ;;
*)
    echo "usage: $0 install|postgres|scan" >&2
    exit 2
    ;;
esac
