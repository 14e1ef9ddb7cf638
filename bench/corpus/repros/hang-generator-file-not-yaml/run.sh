set -e
# then run
exec app
