#!/bin/sh
# The temporal-init service of temporal-dev.yml (image temporalio/admin-tools): registers
# Parley's custom search attributes (SPEC §5) once the Temporal server is up and has created
# the namespace, then exits 0 so that the API and the workers start.
#
# Safe to run again on every `up`: an attribute already registered with the same type is
# left alone. One registered with another type fails the service (as it fails `make dev`):
# the server's database then needs a fresh start (`docker compose -f temporal-dev.yml down -v`).
#
# Keep the list at the bottom in step with domain/search_attributes.py; tests/test_compose.py
# checks both and runs this script against a stand-in `temporal` command.
set -eu

ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
TIMEOUT="${TEMPORAL_INIT_TIMEOUT:-300}"

log() {
    echo "temporal-init: $*"
}

# wait_for WHAT COMMAND...: runs COMMAND every 2 s until it succeeds, for at most TIMEOUT s.
wait_for() {
    what=$1
    shift
    waited=0
    until "$@" >/dev/null 2>&1; do
        if [ "$waited" -ge "$TIMEOUT" ]; then
            log "gave up after ${TIMEOUT} s waiting for $what" >&2
            "$@" >&2 || true
            exit 1
        fi
        log "waiting for $what"
        sleep 2
        waited=$((waited + 2))
    done
}

# register NAME TYPE: creates the search attribute; "already exists" with the same type is fine.
register() {
    name=$1
    type=$2
    if out=$(temporal operator search-attribute create --address "$ADDRESS" \
        --namespace "$NAMESPACE" --name "$name" --type "$type" 2>&1); then
        log "$name ($type) registered"
        return 0
    fi
    case $out in
        *"different type"*) ;;
        *"already exists"* | *AlreadyExists*)
            log "$name ($type) already registered"
            return 0
            ;;
    esac
    printf '%s\n' "$out" >&2
    log "could not register $name ($type)" >&2
    exit 1
}

wait_for "the Temporal frontend at $ADDRESS" \
    temporal operator cluster health --address "$ADDRESS"
wait_for "namespace $NAMESPACE" \
    temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE"
wait_for "the search attributes of namespace $NAMESPACE" \
    temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE"

register ParleyStage Keyword
register ParleyMediator Keyword
register ParleyCampaign Keyword
register ParleyDeadline Datetime
register ParleyAmount Int
register ParleyOverdue Bool

log "search attributes of namespace $NAMESPACE are in place"
