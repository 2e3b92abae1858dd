# shellcheck shell=bash
# .ci/mariadb.sh: provides a MariaDB server for the import tests and exports AUTH_TEST_MYSQL_URL.
#
# Meant to be sourced, by .ci/run or by a developer: `source .ci/mariadb.sh`.
# - If AUTH_TEST_MYSQL_URL is already set and something answers there, it is used as it is.
# - Otherwise Debian's mariadbd and mariadb-install-db are found, or installed from Debian's packages
#   (mariadb-server) when this is root; a throwaway data directory is initialised in a temporary
#   directory, and mariadbd is started as the current user on a private port on 127.0.0.1 only (and a
#   Unix socket in that directory), with a passwordless root that only this machine's loopback reaches.
# - An EXIT trap stops the server and removes the directory; a trap that was already set (postgres.sh's)
#   still runs after ours. AUTH_TEST_MYSQL_KEEP=1 leaves the server running and prints how to stop it.
# Without this script the tests start a server of their own per test process when mariadbd exists
# (tests/src/mariadb.rs); CI uses this one so the install step is part of the run.
# It deliberately does not use or start the package's own server, and opens nothing beyond loopback.
#
# Like postgres.sh it must not change the caller's shell options (.ci/run has `set -euo pipefail`):
# every command that may fail is tested in a condition, and every variable of ours starts with `__auth_my`.

__auth_my_first_port="${AUTH_TEST_MYSQL_PORT:-53306}"

__auth_my_log() {
    echo "mariadb.sh: $*" >&2
}

# Answers whether something accepts TCP connections at host:port.
__auth_my_open() {
    (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1
}

__auth_my_url_reachable() {
    local rest="${1#*://}"
    rest="${rest#*@}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    local host="${rest%:*}" port="${rest##*:}"
    [[ "$rest" == *:* ]] || port=3306
    [[ -n "$host" ]] || host=127.0.0.1
    __auth_my_open "$host" "$port"
}

__auth_my_find() {
    __auth_my_server=""
    __auth_my_installer=""
    local c
    for c in /usr/sbin/mariadbd /usr/bin/mariadbd "$(command -v mariadbd 2>/dev/null || true)"; do
        if [[ -n "$c" && -x "$c" ]]; then __auth_my_server="$c"; break; fi
    done
    for c in /usr/bin/mariadb-install-db "$(command -v mariadb-install-db 2>/dev/null || true)"; do
        if [[ -n "$c" && -x "$c" ]]; then __auth_my_installer="$c"; break; fi
    done
    [[ -n "$__auth_my_server" && -n "$__auth_my_installer" ]]
}

# Installs the server from Debian's packages (CI runs as root on a fresh machine). The package's
# maintainer scripts would start its own server; a policy-rc.d that refuses service starts keeps them
# from it for the length of the install, and is removed again unless one was there before.
__auth_my_install() {
    if [[ "$(id -u)" != 0 ]]; then
        __auth_my_log "MariaDB server binaries are missing and this is not root; install the mariadb-server package"
        return 1
    fi
    __auth_my_log "installing MariaDB from Debian packages"
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null ||
        status=1
    if [[ -n "$made_policy" ]]; then rm -f "$policy"; fi
    return "$status"
}

__auth_my_stop() {
    if [[ -n "${__auth_my_dir:-}" && -d "${__auth_my_dir}" ]]; then
        if [[ -n "${__auth_my_pid:-}" ]] && kill "${__auth_my_pid}" 2>/dev/null; then
            local i
            for i in $(seq 1 100); do
                kill -0 "${__auth_my_pid}" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "${__auth_my_pid}" 2>/dev/null || true
        fi
        rm -rf "${__auth_my_dir}"
        __auth_my_log "stopped the throwaway server"
    fi
    __auth_my_dir=""
}

__auth_my_exit_trap() {
    local status=$?
    __auth_my_stop
    if [[ -n "${__auth_my_prev_trap:-}" ]]; then
        eval "${__auth_my_prev_trap}"
    fi
    return "$status"
}

__auth_my_current_exit_trap() {
    local printed
    printed="$(trap -p EXIT)"
    [[ -n "$printed" ]] || return 0
    eval "set -- ${printed}"
    echo "$3"
}

__auth_my_start() {
    if ! __auth_my_find; then
        __auth_my_install || return 1
        if ! __auth_my_find; then
            __auth_my_log "mariadb-server is installed but no mariadbd / mariadb-install-db was found"
            return 1
        fi
    fi
    __auth_my_dir="$(mktemp -d /tmp/auth-mariadb.XXXXXX)" || return 1
    local user
    user="$(id -un)"

    local port="${__auth_my_first_port}" last=$((__auth_my_first_port + 20))
    while ((port < last)) && __auth_my_open 127.0.0.1 "$port"; do
        port=$((port + 1))
    done
    if ((port >= last)); then
        __auth_my_log "no free port in ${__auth_my_first_port}..$((last - 1))"
        return 1
    fi

    if ! "${__auth_my_installer}" --no-defaults --datadir="${__auth_my_dir}/data" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db >"${__auth_my_dir}/install.log" 2>&1; then
        __auth_my_log "mariadb-install-db failed:"
        cat "${__auth_my_dir}/install.log" >&2
        return 1
    fi
    # No durability for a throwaway server; utf8mb4 so a database created without a charset is sane.
    "${__auth_my_server}" --no-defaults --datadir="${__auth_my_dir}/data" --user="$user" \
        --bind-address=127.0.0.1 --port="$port" --socket="${__auth_my_dir}/sock" \
        --pid-file="${__auth_my_dir}/pid" --log-error="${__auth_my_dir}/error.log" \
        --skip-name-resolve --skip-log-bin --innodb-flush-log-at-trx-commit=0 \
        --character-set-server=utf8mb4 >/dev/null 2>&1 &
    __auth_my_pid=$!
    local i
    for i in $(seq 1 600); do
        if __auth_my_open 127.0.0.1 "$port"; then
            __auth_my_port="$port"
            return 0
        fi
        if ! kill -0 "${__auth_my_pid}" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    __auth_my_log "mariadbd did not start:"
    cat "${__auth_my_dir}/error.log" >&2 || true
    return 1
}

__auth_my_main() {
    if [[ -n "${AUTH_TEST_MYSQL_URL:-}" ]]; then
        if __auth_my_url_reachable "${AUTH_TEST_MYSQL_URL}"; then
            __auth_my_log "using the server at AUTH_TEST_MYSQL_URL, which is reachable"
            return 0
        fi
        __auth_my_log "AUTH_TEST_MYSQL_URL is set but nothing answers there; starting a throwaway server instead"
    fi
    if ! __auth_my_start; then
        __auth_my_stop
        return 1
    fi
    if [[ "${AUTH_TEST_MYSQL_KEEP:-}" == 1 ]]; then
        __auth_my_log "server left running; stop it with: kill ${__auth_my_pid} && rm -rf ${__auth_my_dir}"
    else
        __auth_my_prev_trap="$(__auth_my_current_exit_trap)"
        trap __auth_my_exit_trap EXIT
    fi
    export AUTH_TEST_MYSQL_URL="mysql://root@127.0.0.1:${__auth_my_port}/"
    __auth_my_log "$("${__auth_my_server}" --version | awk '{print $3}') on 127.0.0.1:${__auth_my_port}, data in ${__auth_my_dir}"
    __auth_my_log "AUTH_TEST_MYSQL_URL=${AUTH_TEST_MYSQL_URL}"
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "mariadb.sh: source this file (source .ci/mariadb.sh); run on its own its server would stop at once" >&2
    exit 2
fi

__auth_my_main
