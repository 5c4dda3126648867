#!/bin/sh
# A backup of the database: pg_dump's custom format (compressed; pg_restore can restore it all
# or in part), written under a temporary name and renamed once complete, so a dump that failed
# half-way is never taken for a good one. Dumps older than KEEP_DAYS (14) days are removed.
#
#   deploy/backup.sh DIRECTORY [DATABASE]      (DATABASE: newsfund)
#
# Connects as libpq does (PGHOST, PGPORT, PGUSER, ... or the local socket); run daily by
# newsfund-backup.timer. Restore with deploy/restore.sh (README "Backups").
set -eu
dir=$1
database=${2:-newsfund}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
file="$dir/newsfund-$stamp.dump"
pg_dump --format=custom --no-owner --no-privileges --file="$file.partial" "$database"
mv "$file.partial" "$file"
find "$dir" -name 'newsfund-*.dump' -mtime +"${KEEP_DAYS:-14}" -delete
echo "$file"
