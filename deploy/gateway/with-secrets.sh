#!/bin/sh
# Entry point of the gateway container in docker-compose.yml. The ledger database password
# and the MinIO keys are compose secrets (files under /run/secrets), never values in the
# compose file or the host's environment: this script hands them to libpq (PGPASSWORD; the
# database URL carries no password) and to boto3 (AWS_*) in this process's environment
# only, then replaces itself with the command (`ehrgate serve`).
set -eu

secret() {
  if [ ! -s "/run/secrets/$1" ]; then
    echo "with-secrets: /run/secrets/$1 is missing or empty (see deploy/make-secrets.sh)" >&2
    exit 1
  fi
  cat "/run/secrets/$1"
}

PGPASSWORD=$(secret postgres_password)
AWS_ACCESS_KEY_ID=$(secret minio_root_user)
AWS_SECRET_ACCESS_KEY=$(secret minio_root_password)
export PGPASSWORD AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

exec "$@"
