#!/usr/bin/env bash
# Make sure the local PostgreSQL the tests use is running and has a `test` database.
# Tests reach it as CP_TEST_POSTGRES_URL (default postgres@127.0.0.1:5432/test).
set -euo pipefail
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version"
    if [ "$(id -u)" -eq 0 ]; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    else
        sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
if ! as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    as_postgres createdb test
fi
