#!/bin/sh
# Restore a dump made by deploy/backup.sh into a NEW database (never over the live one), in one
# transaction: all of it or nothing. Check it, then point DATABASE_URL at it (or rename it) and
# restart the app.
#
#   deploy/restore.sh DUMP NEW_DATABASE [OWNER]      (OWNER, the app's role: newsfund)
#
# Run as a role that may create databases (sudo -u postgres ...); connects as libpq does.
set -eu
dump=$1
database=$2
owner=${3:-newsfund}
createdb --owner="$owner" "$database"
pg_restore --exit-on-error --single-transaction --no-owner --role="$owner" \
    --dbname="$database" "$dump"
echo "restored $dump into $database"
