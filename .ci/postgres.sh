# shellcheck shell=bash
# .ci/postgres.sh: provides a PostgreSQL server for the tests and exports AUTH_TEST_POSTGRES_URL.
#
# Meant to be sourced, by .ci/run or by a developer: `source .ci/postgres.sh`.
# - If AUTH_TEST_POSTGRES_URL is already set and the server answers, it is used as it is.
# - Otherwise the PostgreSQL server binaries are found (Debian keeps them in /usr/lib/postgresql/<ver>/bin)
#   or installed from Debian's packages, a throwaway cluster is created in a temporary directory with
#   initdb, started with pg_ctl on a private port listening on 127.0.0.1 only (and a Unix socket in that
#   directory), with trust authentication, and AUTH_TEST_POSTGRES_URL is exported to point at it.
# - An EXIT trap stops the cluster and removes the directory; a trap that was already set still runs
#   after ours. Set AUTH_TEST_POSTGRES_KEEP=1 to leave the cluster running (for a developer whose
#   shell ends between commands); the stop command is printed then.
# It deliberately does not create a cluster that survives the shell, touch the system's own clusters, or
# open anything beyond the loopback interface.
#
# It must not change the caller's shell options: .ci/run sources it under `set -euo pipefail`, so every
# command that may fail is tested in a condition, and every variable of ours starts with `__auth_pg`.

# Private port range: the first free one is used, so two checkouts on one machine do not collide.
__auth_pg_first_port="${AUTH_TEST_POSTGRES_PORT:-55432}"

__auth_pg_log() {
    echo "postgres.sh: $*" >&2
}

# Answers whether a server accepts connections at URL, with the client tools when there are some and a
# bare TCP probe of host:port otherwise (a URL set by hand may point at a machine without them).
__auth_pg_reachable() {
    local url="$1" isready=""
    if command -v pg_isready >/dev/null 2>&1; then
        isready="pg_isready"
    elif [[ -n "${__auth_pg_bin:-}" && -x "${__auth_pg_bin}/pg_isready" ]]; then
        isready="${__auth_pg_bin}/pg_isready"
    fi
    if [[ -n "$isready" ]]; then
        "$isready" -q -t 5 -d "$url" >/dev/null 2>&1
        return
    fi
    local rest="${url#*://}"
    rest="${rest#*@}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    local host="${rest%:*}" port="${rest##*:}"
    [[ "$rest" == *:* ]] || port=5432
    [[ -n "$host" ]] || host=127.0.0.1
    (exec 3<>"/dev/tcp/${host}/${port}") >/dev/null 2>&1
}

# The newest installed server's bin directory, or nothing.
__auth_pg_find_bin() {
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            # Versions are plain integers since PostgreSQL 10; compare them numerically.
            if [[ -z "$best" ]] || (( $(basename "$(dirname "$dir")") > $(basename "$(dirname "$best")") )); then
                best="$dir"
            fi
        fi
    done
    if [[ -z "$best" ]] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        best="$(dirname "$(command -v initdb)")"
    fi
    echo "$best"
}

# Installs the server from Debian's packages (CI runs as root on a fresh machine).
__auth_pg_install() {
    if [[ "$(id -u)" != 0 ]]; then
        __auth_pg_log "PostgreSQL server binaries are missing and this is not root; install the postgresql package"
        return 1
    fi
    __auth_pg_log "installing PostgreSQL from Debian packages"
    # No prompts (CI has no stdin), and no recommended extras; the package's own cluster is not used.
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# Runs a server tool as the cluster's owner: PostgreSQL refuses to run as root.
__auth_pg_as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Stops the cluster and removes its directory; installed as (part of) the EXIT trap.
__auth_pg_stop() {
    if [[ -n "${__auth_pg_dir:-}" && -d "${__auth_pg_dir}" ]]; then
        __auth_pg_as_owner "${__auth_pg_bin}/pg_ctl" -D "${__auth_pg_dir}/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "${__auth_pg_dir}"
        __auth_pg_log "stopped the throwaway cluster"
    fi
    __auth_pg_dir=""
}

# Our stop, then whatever EXIT trap was there before us.
__auth_pg_exit_trap() {
    local status=$?
    __auth_pg_stop
    if [[ -n "${__auth_pg_prev_trap:-}" ]]; then
        eval "${__auth_pg_prev_trap}"
    fi
    return "$status"
}

# The command of the current EXIT trap: `trap -p` prints shell input, which `set --` takes apart safely.
__auth_pg_current_exit_trap() {
    local printed
    printed="$(trap -p EXIT)"
    [[ -n "$printed" ]] || return 0
    eval "set -- ${printed}"
    echo "$3"
}

# A throwaway CA and a certificate for 127.0.0.1 in directory $1 (the key and certificate in $1/data),
# so the tests can connect with sslmode=verify-full; needs the openssl command.
__auth_pg_tls() {
    local d="$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=auth-tests PostgreSQL CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >/dev/null 2>&1 || return 1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$d/data/server.key" -out "$d/server.csr" >/dev/null 2>&1 || return 1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -out "$d/data/server.crt" -extfile "$d/ext.cnf" >/dev/null 2>&1 || return 1
    # PostgreSQL refuses a key that others can read; the owner runs the server.
    chmod 600 "$d/data/server.key" || return 1
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$d/data/server.key" "$d/data/server.crt" || return 1
    fi
    chmod 644 "$d/ca.pem"
}

__auth_pg_start() {
    __auth_pg_bin="$(__auth_pg_find_bin)"
    if [[ -z "${__auth_pg_bin}" ]]; then
        __auth_pg_install || return 1
        __auth_pg_bin="$(__auth_pg_find_bin)"
        if [[ -z "${__auth_pg_bin}" ]]; then
            __auth_pg_log "the postgresql package is installed but no initdb/pg_ctl was found under /usr/lib/postgresql"
            return 1
        fi
    fi
    if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
        # The Debian package creates this user; binaries from elsewhere may not have.
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres || return 1
    fi

    # Under /tmp rather than $TMPDIR: the postgres user must be able to reach it, and $TMPDIR may be
    # inside root's home.
    __auth_pg_dir="$(mktemp -d /tmp/auth-pg.XXXXXX)" || return 1
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "${__auth_pg_dir}" || return 1
    fi

    local port="${__auth_pg_first_port}" last=$((__auth_pg_first_port + 20))
    while (( port < last )) && __auth_pg_reachable "postgres://127.0.0.1:${port}/postgres"; do
        port=$((port + 1))
    done
    if (( port >= last )); then
        __auth_pg_log "no free port in ${__auth_pg_first_port}..$((last - 1))"
        return 1
    fi

    # C locale and UTF-8 whatever the machine's locale is; trust, because only this machine's loopback
    # and a socket in a private directory can reach the server.
    if ! __auth_pg_as_owner "${__auth_pg_bin}/initdb" -D "${__auth_pg_dir}/data" -U postgres \
        --auth=trust --encoding=UTF8 --no-locale --no-sync >"${__auth_pg_dir}/initdb.log" 2>&1; then
        __auth_pg_log "initdb failed:"
        cat "${__auth_pg_dir}/initdb.log" >&2
        return 1
    fi
    # A throwaway cluster need not survive a power cut, so fsync and friends are off: the tests spend
    # their time on locking and logic instead of waiting for the disk. Production keeps the defaults.
    local opts="-c listen_addresses=127.0.0.1 -p ${port} -k ${__auth_pg_dir}"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    # TLS beside plain connections, for the sslmode=verify-full tests (AUTH_TEST_POSTGRES_CA).
    __auth_pg_ca=""
    if command -v openssl >/dev/null 2>&1 && __auth_pg_tls "${__auth_pg_dir}"; then
        opts+=" -c ssl=on -c ssl_cert_file=${__auth_pg_dir}/data/server.crt -c ssl_key_file=${__auth_pg_dir}/data/server.key"
        __auth_pg_ca="${__auth_pg_dir}/ca.pem"
    else
        __auth_pg_log "no openssl: the cluster runs without TLS and the TLS tests skip"
    fi
    if ! __auth_pg_as_owner "${__auth_pg_bin}/pg_ctl" -D "${__auth_pg_dir}/data" \
        -l "${__auth_pg_dir}/server.log" -o "$opts" -w -t 60 start >/dev/null; then
        __auth_pg_log "pg_ctl start failed:"
        cat "${__auth_pg_dir}/server.log" >&2
        return 1
    fi
    # A database of its own, so the tests' CREATE DATABASE calls start from a name that says what it is for.
    if ! __auth_pg_as_owner "${__auth_pg_bin}/createdb" -h "${__auth_pg_dir}" -p "$port" -U postgres auth_test; then
        __auth_pg_log "createdb auth_test failed"
        return 1
    fi
    __auth_pg_port="$port"
}

__auth_pg_main() {
    if [[ -n "${AUTH_TEST_POSTGRES_URL:-}" ]]; then
        if __auth_pg_reachable "${AUTH_TEST_POSTGRES_URL}"; then
            __auth_pg_log "using the server at AUTH_TEST_POSTGRES_URL, which is reachable"
            return 0
        fi
        __auth_pg_log "AUTH_TEST_POSTGRES_URL is set but nothing answers there; starting a throwaway cluster instead"
    fi

    if ! __auth_pg_start; then
        __auth_pg_stop
        return 1
    fi

    local url="postgres://postgres@127.0.0.1:${__auth_pg_port}/auth_test"
    if [[ "${AUTH_TEST_POSTGRES_KEEP:-}" == 1 ]]; then
        __auth_pg_log "cluster left running; stop it with:"
        __auth_pg_log "  runuser -u postgres -- ${__auth_pg_bin}/pg_ctl -D ${__auth_pg_dir}/data -m fast stop && rm -rf ${__auth_pg_dir}"
    else
        __auth_pg_prev_trap="$(__auth_pg_current_exit_trap)"
        trap __auth_pg_exit_trap EXIT
    fi
    export AUTH_TEST_POSTGRES_URL="$url"
    if [[ -n "${__auth_pg_ca}" ]]; then
        export AUTH_TEST_POSTGRES_CA="${__auth_pg_ca}"
        __auth_pg_log "AUTH_TEST_POSTGRES_CA=${AUTH_TEST_POSTGRES_CA} (TLS on)"
    fi
    __auth_pg_log "PostgreSQL $("${__auth_pg_bin}/postgres" --version | awk '{print $3}') on 127.0.0.1:${__auth_pg_port}, data in ${__auth_pg_dir}"
    __auth_pg_log "AUTH_TEST_POSTGRES_URL=${AUTH_TEST_POSTGRES_URL}"
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "postgres.sh: source this file (source .ci/postgres.sh); run on its own its server would stop at once" >&2
    exit 2
fi

__auth_pg_main
