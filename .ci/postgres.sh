# Sourced by .ci/run: a throwaway PostgreSQL server for the study test, on 127.0.0.1, stopped and its data
# removed when CI exits.
# Installs the Debian package where no server is installed and we may; otherwise the test says it was skipped.
start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "CI: installing PostgreSQL (Debian package)"
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; } \
            > /tmp/mnist8k-apt.log 2>&1 || echo "CI: apt-get failed, see /tmp/mnist8k-apt.log"
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    fi
    if [ -z "$bin" ]; then
        echo "CI: no PostgreSQL server here; its study test will be skipped"
        return 0
    fi
    local as=() dir port=$((40000 + $$ % 20000))
    dir=$(mktemp -d /tmp/mnist8k-postgres.XXXXXX)
    if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
        chown postgres "$dir"
        as=(runuser -u postgres --)
    fi
    "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres > "$dir/initdb.log" 2>&1 &&
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start > /dev/null &&
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p $port -U postgres studies || {
        echo "CI: PostgreSQL did not start (see $dir); its study test will be skipped"
        return 0
    }
    trap "${as[*]} $bin/pg_ctl -D $dir/data -m fast stop > /dev/null; rm -rf $dir" EXIT
    export MNIST8K_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/studies"
    echo "CI: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $MNIST8K_POSTGRES_URL"
}
