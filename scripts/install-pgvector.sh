#!/usr/bin/env bash
# Installs a PostgreSQL server with the pgvector extension, for the pgvector adapter's tests.
#
# Idempotent: when the server binaries and pgvector's control file are already in place it exits at
# once. Otherwise (as root, with network access to Debian's archive only):
#   1. installs the PostgreSQL server from apt (postgresql-15 on Debian 12) if it is missing;
#   2. installs pgvector from apt when the distribution packages it for that server version;
#   3. otherwise builds Debian's pgvector *source* package (from trixie, which packages it) against
#      the server's headers and installs it. A private apt state directory is used for the trixie
#      source list, so the system's apt sources and package lists are left untouched.
#
# Environment: PG_MAJOR (default: the installed server's major version, else 15),
#              PGVECTOR_SOURCE_SUITE (default: trixie).
set -euo pipefail

log() { echo "install-pgvector: $*" >&2; }

find_pg_config() {
  local c
  for c in /usr/lib/postgresql/${PG_MAJOR:-*}/bin/pg_config; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

have_server_and_vector() {
  local pgc
  pgc=$(find_pg_config) || return 1
  local bindir sharedir
  bindir=$("$pgc" --bindir) && sharedir=$("$pgc" --sharedir) || return 1
  [ -x "$bindir/postgres" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] \
    && [ -f "$sharedir/extension/vector.control" ]
}

if have_server_and_vector; then
  log "PostgreSQL and pgvector are already installed ($(find_pg_config))"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (it installs Debian packages); try: sudo $0"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
}

# 1. The server.
if ! find_pg_config >/dev/null || [ ! -x "$("$(find_pg_config)" --bindir)/postgres" ]; then
  PG_MAJOR=${PG_MAJOR:-15}
  log "installing postgresql-$PG_MAJOR"
  apt_update_once
  apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR" >/dev/null
fi
PG_CONFIG=$(find_pg_config)
PG_MAJOR=${PG_MAJOR:-$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')}
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [ -f "$SHAREDIR/extension/vector.control" ]; then
  log "pgvector already installed for PostgreSQL $PG_MAJOR"
  exit 0
fi

# 2. pgvector from the distribution, where it is packaged for this server version.
apt_update_once
candidate=$(apt-cache policy "postgresql-$PG_MAJOR-pgvector" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
  log "installing postgresql-$PG_MAJOR-pgvector $candidate from apt"
  apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR-pgvector" >/dev/null
  exit 0
fi

# 3. Build Debian's pgvector source package against this server's headers.
SUITE=${PGVECTOR_SOURCE_SUITE:-trixie}
log "postgresql-$PG_MAJOR-pgvector is not packaged here; building pgvector from Debian $SUITE's source"
apt-get install -y -qq --no-install-recommends \
  "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev >/dev/null

work=$(mktemp -d /tmp/install-pgvector.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/src"
echo "deb-src http://deb.debian.org/debian $SUITE main" > "$work/sources.list"
APT_PRIVATE=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists"
  -o "APT::Sandbox::User=root"  # downloads go to a private temp dir the _apt user cannot enter
)
apt-get "${APT_PRIVATE[@]}" update -qq
(cd "$work/src" && apt-get "${APT_PRIVATE[@]}" source -qq pgvector >/dev/null)
srcdir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)
if [ -z "$srcdir" ]; then
  log "could not unpack Debian's pgvector source package"
  exit 1
fi
# with_llvm=no: skip the JIT bitcode, which would need a matching clang; the extension works without.
make -s -C "$srcdir" PG_CONFIG="$PG_CONFIG" with_llvm=no OPTFLAGS="" -j"$(nproc)" >/dev/null
make -s -C "$srcdir" PG_CONFIG="$PG_CONFIG" with_llvm=no install >/dev/null

if have_server_and_vector; then
  log "installed pgvector $(basename "$srcdir" | sed 's/^pgvector-//') for PostgreSQL $PG_MAJOR"
else
  log "pgvector build finished but $SHAREDIR/extension/vector.control is missing"
  exit 1
fi
