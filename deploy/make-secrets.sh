#!/bin/sh
# Creates the secrets docker-compose.yml reads (once; an existing file is never replaced):
#   deploy/make-secrets.sh [DIR]      default DIR: deploy/secrets (compose: SECRETS_DIR)
# The directory is 0700, so that no other host user reaches the files. The files themselves
# are 0644 because each container reads them as its own user (postgres, minio, ehrgate).
set -eu
dir=${1:-$(dirname "$0")/secrets}
umask 022
mkdir -p "$dir"
chmod 0700 "$dir"

make() {
  if [ -s "$dir/$1" ]; then
    echo "kept    $dir/$1"
  else
    printf '%s\n' "$2" >"$dir/$1"
    echo "created $dir/$1"
  fi
  chmod 0644 "$dir/$1"
}

# Hexadecimal, so that the values need no quoting in URLs or shell words.
make postgres_password "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
make minio_root_user ehrgate
make minio_root_password "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
